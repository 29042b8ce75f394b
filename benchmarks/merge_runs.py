"""Kept for the commands quoted in docs/: merging moved to ``yolo_kd.bench.stats`` (``yolo-kd benchmark merge``).

``python benchmarks/merge_runs.py OUT SRC[:SUFFIX] [SRC[:SUFFIX] ...]``
"""

import sys
from pathlib import Path

from yolo_kd.bench.report import merge

if __name__ == "__main__":
    print(merge(Path(sys.argv[1]), sys.argv[2:])["table"])
