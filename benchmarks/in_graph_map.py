"""mAP of the in-graph IR against the numpy path on the same images (issue 20), from exported OpenVINO IR folders.

python benchmarks/in_graph_map.py IMAGES_DIR LABELS_DIR IR_FOLDER [IR_FOLDER ...] [precision=f32]
``precision=`` sets OpenVINO's INFERENCE_PRECISION_HINT for both paths (default: the device's, bf16 on CPUs with
AVX512-BF16 or AMX). Both paths run at the in-graph IR's baked-in NMS settings (conf 0.25, iou 0.7, max_det 300),
so they are comparable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from yolo_kd.edge import Detector
from yolo_kd.edge.graph import write_in_graph
from yolo_kd.edge.runtime import list_images, read_image
from yolo_kd.tools.parity import agreement, detections_map


def labels_of(img: Path, shape: tuple[int, int], labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """YOLO label file (cls cx cy w h, normalised) as (classes, xyxy pixels) of an image of ``shape`` (h, w)."""
    h, w = shape
    f = labels / f"{img.stem}.txt"
    a = np.loadtxt(f, ndmin=2) if f.exists() and f.stat().st_size else np.zeros((0, 5))
    xy, wh = a[:, 1:3] * [w, h], a[:, 3:5] * [w, h]
    return a[:, 0].astype(int), np.concatenate([xy - wh / 2, xy + wh / 2], 1)


def main(images: str, labels: str, *irs: str) -> None:
    """Print one markdown row per IR folder: both paths' mAP, their difference and their detection agreement."""
    precision = next((a.split("=", 1)[1] for a in irs if a.startswith("precision=")), "")
    irs = tuple(a for a in irs if not a.startswith("precision="))
    files = list_images(images)
    frames = [read_image(f) for f in files]  # decoded once, for the labels' scale and both paths
    truth = [labels_of(f, im.shape[:2], Path(labels)) for f, im in zip(files, frames)]
    print(f"{len(files)} images from {images}, inference precision {precision or 'device default'}\n")
    print(
        "| IR | numpy mAP50 / mAP50-95 | in-graph mAP50 / mAP50-95 | difference (points) | matched | max score diff |"
    )
    print("|---|---|---|---|---|---|")
    for ir in irs:
        a, b = Detector(ir, precision=precision), Detector(write_in_graph(ir), precision=precision)
        da, db = [a(im) for im in frames], [b(im) for im in frames]
        (a50, am), (b50, bm), ag = detections_map(da, truth), detections_map(db, truth), agreement(da, db)
        print(
            f"| {Path(ir).name} | {a50 * 100:.2f} / {am * 100:.2f} | {b50 * 100:.2f} / {bm * 100:.2f} | "
            f"{(b50 - a50) * 100:+.2f} / {(bm - am) * 100:+.2f} | {ag['matched']:.3f} | {ag['max_score_diff']:.1e} |"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
