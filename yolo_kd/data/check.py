"""Dataset checks done before training: images present, label class ids inside the data yaml's class count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError, with_article


def split_images(spec: str | list[str]) -> list[Path]:
    """Image files of one split given as a folder (sorted), a .txt list of paths, or a list of either."""
    from ultralytics.data.utils import IMG_FORMATS

    out: list[Path] = []
    for s in [spec] if isinstance(spec, (str, Path)) else spec:
        p = Path(s)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix[1:].lower() in IMG_FORMATS)
        elif p.suffix == ".txt" and p.is_file():  # './' lines are relative to the list, as Ultralytics reads them
            lines = [ln.strip() for ln in p.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
            out += [p.parent / ln[2:] if ln.startswith("./") else Path(ln) for ln in lines]
        elif p.is_file():
            out.append(p)
    return out


LABELS = {  # what one label line of each task holds, for the error message
    "segment": "class x1 y1 x2 y2 ... (a polygon)",
    "pose": "class x y w h and kpt_shape's keypoints",
    "obb": "class x1 y1 x2 y2 x3 y3 x4 y4",
}


def _fits(task: str, n: int, kpt: int) -> bool:
    """Whether a label line of ``n`` values is one of ``task``'s (any box or polygon line for detection)."""
    if task == "segment":
        return n >= 7 and n % 2 == 1
    if task == "pose":
        return n == 5 + kpt
    if task == "obb":
        return n == 9
    return n == 5 or (n >= 7 and n % 2 == 1)


def check_dataset(data: dict[str, Any], splits: tuple[str, ...] = ("train", "val"), task: str = "detect") -> None:
    """Raise a one-line KDError for an empty split, a class id outside ``data['names']`` or a label not ``task``'s.

    A segment student needs polygons (not boxes only), a pose student ``kpt_shape``'s keypoint count, obb 4 corners.
    """
    from ultralytics.data.utils import img2label_paths

    nc = int(data["nc"])
    kpt = int(data["kpt_shape"][0]) * int(data["kpt_shape"][1]) if data.get("kpt_shape") else 0
    for split in splits:
        if not data.get(split):
            continue
        images = split_images(data[split])
        if not images:
            raise KDError(f"no images in the {split} split ({data[split]}); check 'path' and '{split}' in the yaml")
        for lbl in map(Path, img2label_paths([str(p) for p in images])):
            if not lbl.is_file():
                continue
            for n, line in enumerate(lbl.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    c = int(float(line.split()[0]))
                except ValueError:
                    raise KDError(f"{lbl}:{n}: class id '{line.split()[0]}' is not a number") from None
                if not 0 <= c < nc:
                    raise KDError(
                        f"{lbl}:{n}: class {c} but the data yaml has {nc} classes (0-{nc - 1}); fix the label or "
                        "add the class to 'names'"
                    )
                if not _fits(task, len(line.split()), kpt):
                    raise KDError(
                        f"{lbl}:{n}: {len(line.split())} values, but {with_article(task)} student needs "
                        f"'{LABELS.get(task, 'class x y w h')}' per line; pass {with_article(task)} dataset or a "
                        "student of the labels' task"
                    )
