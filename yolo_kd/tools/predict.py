"""``yolo-kd predict``: the torch-free runtime (OpenVINO or ONNX Runtime) on images, a directory or a video."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

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


def keep_classes(d, classes: list | None):
    """Detections restricted to ``classes`` (ids or names); all of them when None."""
    if not classes:
        return d
    from yolo_kd.edge import Detections

    ids = {k for k, v in d.names.items() if v in classes or k in classes or str(k) in map(str, classes)}
    m = np.isin(d.classes.astype(int), list(ids))
    masks = None if d.masks is None else d.masks[m]
    kpts = None if d.keypoints is None else d.keypoints[m]
    xywhr = None if d.xywhr is None else d.xywhr[m]
    return Detections(d.boxes[m], d.scores[m], d.classes[m], d.names, d.path, masks, kpts, xywhr)


def draw(img: np.ndarray, d, path: Path) -> None:
    """Save ``img`` (BGR) with masks, boxes (oriented ones as polygons), labels and keypoints drawn (Pillow)."""
    from PIL import Image, ImageDraw

    rgb = img[..., ::-1].astype(np.float32)
    for m in d.masks if d.masks is not None else []:  # instance masks blended at 40 % in the box colour
        rgb[m] = 0.6 * rgb[m] + 0.4 * np.array([255, 56, 56], np.float32)
    im = Image.fromarray(rgb.astype(np.uint8))
    g = ImageDraw.Draw(im)
    for x in d.to_dicts():
        if "polygon" in x:  # an oriented box: its four corners
            g.polygon([tuple(pt) for pt in x["polygon"]], outline=(255, 56, 56), width=2)
        else:
            g.rectangle(x["box"], outline=(255, 56, 56), width=2)
        g.text((x["box"][0] + 2, x["box"][1] + 1), f"{x['name']} {x['confidence']:.2f}", fill=(255, 255, 255))
        for k in x.get("keypoints", []):
            if len(k) < 3 or k[2] >= 0.5:  # Ultralytics draws keypoints whose visibility is at least 0.5
                g.ellipse([k[0] - 3, k[1] - 3, k[0] + 3, k[1] + 3], fill=(56, 255, 56))
    im.save(path)


def predict(
    model: str,
    source: str,
    conf: float = 0.25,
    iou: float = 0.7,
    imgsz: int | None = None,
    classes: list | str | int | None = None,
    max_det: int = 300,
    save: bool = False,
    project: str = "runs/predict",
    device: str = "CPU",
    out: str | None = None,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Run ``yolo_kd.edge.Detector`` on ``source``; return (and with ``out=`` save as JSON) one record per image.

    ``imgsz`` must match the export's (its input size is fixed); ``classes`` keeps only those ids or names;
    ``save=True`` writes annotated images into ``project``; one summary line per image, as ``yolo predict``.
    """
    from yolo_kd.edge import Detector, list_images, read_image

    det = Detector(model, device=device, conf=conf, iou=iou, max_det=max_det)
    if imgsz is not None and tuple(det.imgsz) != (int(imgsz), int(imgsz)):
        raise KDError(f"this model was exported at imgsz={det.imgsz[0]}; export it again with imgsz={imgsz} "
                      "(exports have a fixed input size)")  # fmt: skip
    classes = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else classes
    classes = [classes] if isinstance(classes, int) else classes
    unknown = [c for c in classes or [] if c not in det.names.values() and str(c) not in map(str, det.names)]
    if unknown:
        raise KDError(f"classes={unknown} are not classes of this model; use ids or names of {dict(det.names)}")
    if out:
        writable(Path(out))  # before any inference: a bad out= used to fail only after every image was predicted
    save_dir = Path(project)
    if save:
        save_dir.mkdir(parents=True, exist_ok=True)
    video = str(source).lower().endswith(VIDEO_SUFFIXES)
    items = frames(source) if video else ((str(p), p) for p in list_images(source))
    records, skipped = [], 0
    for i, (label, item) in enumerate(items):
        try:
            img = read_image(item) if isinstance(item, Path) else item
        except KDError as e:
            if video or Path(source).is_file():
                raise
            skipped += 1  # one unreadable file in a folder: said, skipped; the others are predicted and written
            print(f"skipped: {e}")
            continue
        t = time.perf_counter()
        d = keep_classes(det(img), classes)
        ms = (time.perf_counter() - t) * 1e3
        rec = {"source": label, "shape": list(img.shape[:2]), "ms": round(ms, 2), "detections": d.to_dicts()}
        records.append(rec)
        if save:
            draw(img, d, save_dir / (Path(label).stem + (f"_{i}" if "#" in label else "") + ".jpg"))
        if verbose:
            counts: dict[str, int] = {}
            for x in rec["detections"]:
                counts[x["name"]] = counts.get(x["name"], 0) + 1
            summary = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no detections"
            print(f"{label}: {img.shape[0]}x{img.shape[1]} {summary}, {ms:.1f} ms")
    if save:
        print(f"annotated images saved to {save_dir}")
    if out:
        try:
            Path(out).write_text(json.dumps(records, indent=2))
        except OSError as e:
            raise KDError(f"cannot write {out} ({e.strerror}); pass out= a writable file path") from None
        print(f"saved {len(records)} results to {out}" + (f" ({skipped} unreadable files skipped)" if skipped else ""))
    return records


def writable(path: Path) -> None:
    """One line naming ``path`` and the fix when a results file cannot be written there."""
    import os

    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise KDError(f"out={path} is a folder; pass a file path such as out={path / 'preds.json'}")
    if not parent.is_dir() or not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise KDError(f"cannot write {path} (folder missing or read-only); pass out= a writable file path")
