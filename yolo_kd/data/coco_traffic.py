"""COCO instances json + images to a YOLO dataset restricted to the traffic classes (COCO-Traffic)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import yaml

from yolo_kd.errors import KDError

# the 13 classes of COCO-Traffic in the GKD / AID papers, in the order of their COCO category ids
TRAFFIC_CLASSES = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "bus",
    "train",
    "truck",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "cat",
    "dog",
)
SPLITS = {"train2017": "train", "val2017": "val"}


def load_coco(path: Path) -> dict:
    """Read an instances json and check the keys the conversion needs."""
    if not path.exists():
        raise KDError(f"{path} not found; src= must hold annotations/instances_<split>.json (COCO 2017 layout)")
    try:
        coco = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise KDError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise KDError(f"{path} lacks the '{key}' key; is it a COCO *instances* annotation file?")
    return coco


def yolo_lines(anns: list[dict], width: float, height: float, cat_to_cls: dict[int, int]) -> list[str]:
    """YOLO label lines for one image: kept classes only, crowd boxes skipped, boxes clipped to the image."""
    lines = []
    for a in anns:
        c = cat_to_cls.get(a["category_id"])
        if c is None or a.get("iscrowd", 0):
            continue
        x, y, w, h = a["bbox"]
        x1, y1 = max(x, 0.0), max(y, 0.0)
        x2, y2 = min(x + w, width), min(y + h, height)
        if x2 <= x1 or y2 <= y1:
            continue
        cx, cy, bw, bh = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{c} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
    return lines


def convert_coco_traffic(
    src: str | Path,
    dst: str | Path,
    classes: list[str] | tuple[str, ...] = TRAFFIC_CLASSES,
    keep_empty: bool = False,
    link: bool = False,
) -> Path:
    """Convert COCO 2017 (``src/annotations/instances_{train,val}2017.json`` + ``src/{train,val}2017/``) to YOLO.

    Class ids are remapped to 0..len(classes)-1 in the given order. Crowd annotations (``iscrowd=1``) are skipped,
    as Ultralytics' own COCO converter does (COCO's evaluator ignores detections matched to them; YOLO labels have
    no ignore flag). Images left without any kept object are dropped unless ``keep_empty`` (then they are
    background images with an empty label file).

    Args:
        src (str | Path): COCO root.
        dst (str | Path): Output folder: images/{train,val}, labels/{train,val}, data.yaml.
        classes (list[str]): COCO category names to keep.
        keep_empty (bool): Keep images without kept objects as backgrounds.
        link (bool): Symlink images instead of copying them.

    Returns:
        (Path): The written data.yaml.
    """
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    found = [s for s in SPLITS if (src / "annotations" / f"instances_{s}.json").exists()]
    if not found:
        raise KDError(f"no annotations/instances_train2017.json or instances_val2017.json under {src}")
    counts = {}
    for split in found:
        coco = load_coco(src / "annotations" / f"instances_{split}.json")
        by_name = {c["name"]: c["id"] for c in coco["categories"]}
        missing = [n for n in classes if n not in by_name]
        if missing:
            raise KDError(f"classes {missing} are not COCO categories of {split}; e.g. {sorted(by_name)[:5]}")
        cat_to_cls = {by_name[n]: i for i, n in enumerate(classes)}
        anns: dict[int, list[dict]] = {}
        for a in coco["annotations"]:
            anns.setdefault(a["image_id"], []).append(a)
        out = SPLITS[split]
        (dst / "images" / out).mkdir(parents=True, exist_ok=True)
        (dst / "labels" / out).mkdir(parents=True, exist_ok=True)
        kept = 0
        for im in coco["images"]:
            lines = yolo_lines(anns.get(im["id"], []), float(im["width"]), float(im["height"]), cat_to_cls)
            if not lines and not keep_empty:
                continue
            places = (src / split / im["file_name"], src / "images" / split / im["file_name"])
            img = next((p for p in places if p.exists()), None)
            if img is None:
                raise KDError(f"image {im['file_name']} of {split} not found under {src / split}")
            target = dst / "images" / out / img.name
            if not target.exists():
                os.symlink(img.resolve(), target) if link else shutil.copy2(img, target)
            (dst / "labels" / out / f"{img.stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            kept += 1
        counts[out] = kept
    data = {"path": str(dst.resolve()), **{v: f"images/{v}" for v in counts}, "names": dict(enumerate(classes))}
    if "val" not in counts:
        data["val"] = data.get("train")
    (dst / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    print(f"COCO-Traffic: {', '.join(f'{k} {v} images' for k, v in counts.items())}, {len(classes)} classes -> {dst}")
    return dst / "data.yaml"
