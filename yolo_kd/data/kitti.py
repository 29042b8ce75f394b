"""KITTI object (image_2 + label_2) to a YOLO dataset with a seeded train/val split and a data yaml."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import yaml
from PIL import Image

from yolo_kd.errors import KDError

PAPER_CLASSES = ("Car", "Pedestrian", "Cyclist")  # the 3 classes of the GKD / AID papers
ALL_TYPES = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc")
IMG_SUFFIXES = (".png", ".jpg", ".jpeg")


def parse_label(path: Path) -> list[tuple[str, float, float, float, float]]:
    """Read one KITTI label_2 file into (type, x1, y1, x2, y2); raise a one-line error on a malformed line."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) < 15:
            raise KDError(f"{path}:{n}: KITTI label line has {len(f)} fields, expected 15 (type ... rotation_y)")
        try:
            out.append((f[0], *map(float, f[4:8])))
        except ValueError:
            raise KDError(f"{path}:{n}: bbox fields 5-8 are not numbers: {' '.join(f[4:8])}") from None
    return out


def mask_regions(src: Path, out: Path, regions: list, keep: list) -> None:
    """Write ``src`` to ``out`` with ``regions`` (x1, y1, x2, y2) filled grey outside the ``keep`` boxes."""
    import numpy as np

    with Image.open(src) as pil:
        a = np.array(pil.convert("RGB"))
    m = np.zeros(a.shape[:2], bool)
    for x1, y1, x2, y2 in regions:
        m[max(int(y1), 0) : int(np.ceil(y2)), max(int(x1), 0) : int(np.ceil(x2))] = True
    for x1, y1, x2, y2 in keep:
        m[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = False
    a[m] = 114
    Image.fromarray(a).save(out, **({"quality": 95} if out.suffix.lower() in {".jpg", ".jpeg"} else {}))


def _find_dirs(src: Path) -> tuple[Path, Path]:
    """Locate image_2 and label_2 under ``src`` (KITTI's training/ layout or directly under src)."""
    for root in (src / "training", src):
        if (root / "image_2").is_dir() and (root / "label_2").is_dir():
            return root / "image_2", root / "label_2"
    raise KDError(f"no image_2/ and label_2/ under {src} or {src}/training; point src= at the KITTI object root")


def convert_kitti(
    src: str | Path,
    dst: str | Path,
    classes: tuple[str, ...] | list[str] | str = PAPER_CLASSES,
    mapping: dict[str, str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    dontcare: str = "drop",
) -> Path:
    """Convert KITTI object detection data to YOLO format.

    Args:
        src (str | Path): KITTI root with ``training/image_2`` and ``training/label_2`` (or those two folders).
        dst (str | Path): Output root; gets ``images/{train,val}``, ``labels/{train,val}`` and ``data.yaml``.
        classes (tuple | list | str): Kept class names, in id order; ``"all"`` keeps the 8 KITTI object types.
        mapping (dict | None): Renames applied first, e.g. ``{"Van": "Car", "Person_sitting": "Pedestrian"}``.
            Types neither kept nor mapped (DontCare, Misc, ...) are dropped.
        val_fraction (float): Fraction of images in the validation split (papers: 0.2).
        seed (int): Split seed.
        dontcare (str): ``"drop"`` ignores DontCare regions (KITTI's unlabeled far or occluded objects);
            ``"mask"`` paints them grey (114, Ultralytics' padding value) in the written images, except where they
            overlap a kept box, so the detector is neither rewarded nor punished for what it sees there. YOLO losses
            have no ignore regions, so masking the pixels is how "ignore predictions there" is done.

    Returns:
        (Path): Path of the written data.yaml.
    """
    src, dst = Path(src), Path(dst)
    if dontcare not in {"drop", "mask"}:
        raise KDError(f"dontcare={dontcare} is not one of drop, mask")
    classes = list(ALL_TYPES if classes == "all" else [classes] if isinstance(classes, str) else classes)
    mapping = mapping or {}
    if bad := [v for v in mapping.values() if v not in classes]:
        raise KDError(f"mapping targets {bad} are not among classes {classes}; add them to classes= or fix map=")
    img_dir, lbl_dir = _find_dirs(src)
    images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMG_SUFFIXES)
    if not images:
        raise KDError(f"no images ({', '.join(IMG_SUFFIXES)}) in {img_dir}")
    ids = list(range(len(images)))
    random.Random(seed).shuffle(ids)
    n_val = max(1, round(len(ids) * val_fraction)) if len(ids) > 1 else 0
    val = set(ids[:n_val])
    for split in ("train", "val"):
        (dst / "images" / split).mkdir(parents=True, exist_ok=True)
        (dst / "labels" / split).mkdir(parents=True, exist_ok=True)
    boxes = dict.fromkeys(classes, 0)
    skipped = {"other types": 0, "under 1 px after clipping": 0}
    for i, im in enumerate(images):
        split = "val" if i in val else "train"
        lbl = lbl_dir / f"{im.stem}.txt"
        objs = parse_label(lbl) if lbl.exists() else []
        with Image.open(im) as pil:
            w, h = pil.size
        lines, kept = [], []
        for name, x1, y1, x2, y2 in objs:
            name = mapping.get(name, name)
            if name not in classes:
                skipped["other types"] += name != "DontCare"
                continue
            x1, x2 = sorted((min(max(x1, 0.0), w), min(max(x2, 0.0), w)))
            y1, y2 = sorted((min(max(y1, 0.0), h), min(max(y2, 0.0), h)))
            if x2 - x1 < 1 or y2 - y1 < 1:
                skipped["under 1 px after clipping"] += 1
                continue
            boxes[name] += 1
            cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
            lines.append(f"{classes.index(name)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}\n")
            kept.append((x1, y1, x2, y2))
        ignore = [o[1:] for o in objs if o[0] == "DontCare"] if dontcare == "mask" else []
        if ignore:
            mask_regions(im, dst / "images" / split / im.name, ignore, kept)
        else:
            shutil.copy2(im, dst / "images" / split / im.name)
        (dst / "labels" / split / f"{im.stem}.txt").write_text("".join(lines))
    data = {"path": str(dst.resolve()), "train": "images/train", "val": "images/val", "names": dict(enumerate(classes))}
    (dst / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    print(
        f"KITTI: {len(images) - len(val)} train / {len(val)} val images; boxes "
        + ", ".join(f"{k} {v}" for k, v in boxes.items())
        + "; skipped "
        + ", ".join(f"{v} {k}" for k, v in skipped.items())
        + f" -> {dst / 'data.yaml'}"
    )
    return dst / "data.yaml"
