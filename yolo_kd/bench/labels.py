"""Label-scarce benchmark settings: keep a fraction of the train labels, pool the other images as unlabeled.

``labeled=0.125`` trains every method on a fixed random 1/8 of the train images (the same subset for every method
and seed); method variants name what else a run gets: ``<method>@u`` adds the other 7/8 as ``unlabeled=`` (teacher
pseudo-labels + distillation on them), ``none@all`` trains on every label (the ceiling). All runs are scored on the
same val split.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError

VARIANTS = {"": "the labeled subset", "u": "+ the unlabeled pool", "all": "every train label"}


def split_variant(method: str) -> tuple[str, str]:
    """``'crosskd@u'`` -> ('crosskd', 'u'); one-line errors for an unknown variant or a peer that cannot take it."""
    base, _, variant = method.partition("@")
    if variant not in VARIANTS:
        raise KDError(f"'{method}': unknown variant '@{variant}'; use @u (unlabeled pool) or @all (every label)")
    if variant == "u" and base in {"none", "ultralytics"}:
        raise KDError(f"'{method}': '{base}' cannot read unlabeled images; use a yolo-kd method, e.g. crosskd@u")
    return base, variant


def labeled_split(data_yaml: str, fraction: float, seed: int = 0) -> tuple[str, str]:
    """Write (a data yaml whose train split is the labeled subset, a .txt list of the other train images).

    The subset is a folder of links (``labeled-<fraction>/images`` and ``labels``) beside the data yaml, so its
    Ultralytics label cache is its own: runs on the subset and on every label (``@all``) can run at once.
    """
    import yaml

    if not 0 < fraction < 1:
        raise KDError(f"labeled={fraction} must be a fraction in (0, 1) (1 = every label, the default)")
    src = Path(data_yaml).resolve()  # a relative data= would make the subset's train: relative to the yaml's path:
    d = yaml.safe_load(src.read_text())
    root = Path(d.get("path") or src.parent)
    train = root / d["train"] if not Path(d["train"]).is_absolute() else Path(d["train"])
    if not train.is_dir():
        raise KDError(f"labeled= needs a train folder of images in {src}, found {train}")
    from yolo_kd.data.check import split_images

    files = [str(p) for p in split_images(train)]
    keep = set(random.Random(seed).sample(files, max(1, round(len(files) * fraction))))
    tag = f"{fraction:g}"
    lab, pool = src.parent / f"labeled-{tag}" / "images", src.parent / f"unlabeled-{tag}.txt"
    link_subset(sorted(keep), train, lab)  # its own folder: its label cache never races the full split's
    pool.write_text("\n".join(f for f in files if f not in keep) + "\n")
    out = src.parent / f"data-labeled-{tag}.yaml"
    val = root / d["val"] if not Path(d["val"]).is_absolute() else Path(d["val"])
    out.write_text(yaml.safe_dump({**d, "path": str(root), "train": str(lab), "val": str(val)}, sort_keys=False))
    return str(out), str(pool)


def link_subset(files: list[str], train: Path, dest: Path) -> None:
    """Mirror ``files`` (images under ``train``) and their label files into ``dest`` and its sibling ``labels``.

    Links where the file system allows them, copies elsewhere; files of an earlier, different subset are removed.
    """
    from ultralytics.data.utils import img2label_paths

    want = {}
    for f, label in zip(map(Path, files), map(Path, img2label_paths(files))):
        rel = f.relative_to(train)
        want[dest / rel] = f
        if label.exists():  # no label file: Ultralytics reads the image as background, the same in the subset
            want[dest.parent / "labels" / rel.with_suffix(".txt")] = label
    for old in [p for d in (dest, dest.parent / "labels") if d.is_dir() for p in d.rglob("*") if not p.is_dir()]:
        if old not in want:
            old.unlink()
    for out, f in want.items():
        if out.is_symlink() and out.resolve() == f.resolve():
            continue  # already there (a run on this subset may be reading it)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_symlink() or out.exists():
            out.unlink()
        try:
            out.symlink_to(f.resolve())
        except OSError:
            shutil.copy2(f, out)


def variant_spec(spec: dict[str, Any], data_all: str, pool: str | None) -> dict[str, Any]:
    """The run spec for a method variant: its trainer method, data and extra KD settings."""
    base, variant = split_variant(spec["method"])
    out = {**spec, "train_method": base}
    if variant == "all":
        out["data"] = data_all
    if variant == "u":
        out["kd"] = {**spec["kd"], "unlabeled": pool}
    return out
