"""Dataset checks done before training: images present, label class ids inside the data yaml's class count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError


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


def check_dataset(data: dict[str, Any], splits: tuple[str, ...] = ("train", "val")) -> None:
    """Raise a one-line KDError for an empty split or a label whose class id is outside ``data['names']``."""
    from ultralytics.data.utils import img2label_paths

    nc = int(data["nc"])
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
