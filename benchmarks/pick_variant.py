"""Kept for the commands quoted in docs/: the tuning rule moved to ``yolo_kd.bench.stats`` (``benchmark pick``).

``python benchmarks/pick_variant.py ROOT REF_FOLDER REF_METHOD METHOD TAG=FOLDER[:NAME] ...``
"""

import sys
from pathlib import Path

from yolo_kd.bench.stats import pick

if __name__ == "__main__":
    root, ref_folder, ref_method, method, *pairs = sys.argv[1:]
    variants = {}
    for p in pairs:
        tag, _, spec = p.partition("=")
        folder, _, name = spec.partition(":")
        variants[tag] = f"{Path(root) / folder}/{name or method}"
    print(pick(f"{Path(root) / ref_folder}/{ref_method}", variants) or "default")
