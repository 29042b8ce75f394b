"""Images per second of ``Detector.predict_many`` (THROUGHPUT hint) on decoded frames, for comparing code trees.

``python benchmarks/predict_many_rate.py LABEL IMAGES IR_FOLDER [IR_FOLDER ...]`` (docs/benchmarks.md 4g): the first
64 images of ``IMAGES`` decoded once, one warm-up pass, then the median of 5 timed passes of ``predict_many`` over
them; one line per IR, prefixed by ``LABEL``. Run it alternately under two ``PYTHONPATH`` trees.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from yolo_kd.edge import Detector
from yolo_kd.edge.runtime import list_images, read_image


def main(label: str, images: str, *irs: str) -> None:
    """Print the median rate per IR."""
    frames = [read_image(f) for f in list_images(images)[:64]]
    for ir in irs:
        det = Detector(ir, hint="THROUGHPUT")
        det.predict_many(frames)
        rates = []
        for _ in range(5):
            t = time.perf_counter()
            det.predict_many(frames)
            rates.append(len(frames) / (time.perf_counter() - t))
        print(f"{label} {Path(ir).name}: {statistics.median(rates):.1f} img/s", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
