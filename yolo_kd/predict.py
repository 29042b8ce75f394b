"""``yolo-kd predict``: the torch-free OpenVINO runtime on images, a directory or a video; prints and saves results."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def frames(source: str):
    """Yield (label, BGR frame) from a video file (needs OpenCV)."""
    try:
        import cv2
    except ImportError as e:
        raise KDError("video input needs OpenCV: pip install opencv-python-headless") from e

    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise KDError(f"cannot open video '{source}'")
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield f"{source}#{i}", frame
        i += 1
    cap.release()


def predict(
    model: str,
    source: str,
    conf: float = 0.25,
    iou: float = 0.7,
    device: str = "CPU",
    out: str | None = None,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Run ``yolo_kd.edge.Detector`` on ``source``; return (and with ``out=`` save as JSON) one record per image."""
    from yolo_kd.edge import Detector, list_images, read_image

    det = Detector(model, device=device, conf=conf, iou=iou)
    items = (
        frames(source) if str(source).lower().endswith(VIDEO_SUFFIXES) else ((str(p), p) for p in list_images(source))
    )
    records = []
    for label, item in items:
        img = read_image(item) if isinstance(item, Path) else item
        t = time.perf_counter()
        d = det(img)
        ms = (time.perf_counter() - t) * 1e3
        rec = {"source": label, "shape": list(img.shape[:2]), "ms": round(ms, 2), "detections": d.to_dicts()}
        records.append(rec)
        if verbose:
            summary = ", ".join(f"{x['name']} {x['confidence']:.2f}" for x in rec["detections"]) or "no detections"
            print(f"{label}: {len(rec['detections'])} ({summary}) {ms:.1f} ms")
    if out:
        Path(out).write_text(json.dumps(records, indent=2))
        print(f"saved {len(records)} results to {out}")
    return records
