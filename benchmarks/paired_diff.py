"""Kept for the commands quoted in docs/: the statistics moved to ``yolo_kd.bench.stats`` (``yolo-kd benchmark diff``).

``python benchmarks/paired_diff.py FOLDER [level=0.975] [seeds=8,9,...] A:B [A:LOW:HIGH ...] [A:B,C:D,...]``
"""

import sys

from yolo_kd.bench.stats import diff

if __name__ == "__main__":
    folder, *specs = sys.argv[1:]
    opts = dict(s.split("=", 1) for s in specs if s.startswith(("level=", "seeds=")))
    print(diff([folder], [s for s in specs if "=" not in s], float(opts.get("level", 0.95)), opts.get("seeds")))
