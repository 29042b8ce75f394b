"""The unlabeled-image stream: find the images, augment them exactly like the labeled ones, one batch per step.

``unlabeled=`` is a folder (searched recursively), a ``.txt`` list (one path per line, read as Ultralytics reads a
``train:`` list: absolute, ``./`` next to the list, anything else relative to the current folder) or a glob. The
images get Ultralytics' training augmentation (mosaic, HSV, flips, ...) in their own stream, so a mosaic never mixes
labeled and unlabeled images and the teacher's pseudo-labels on the augmented batch stay aligned with the student's
input. Their (empty) label records are placeholders that never reach the loss (see pseudo.py).
"""

from __future__ import annotations

import glob
from copy import copy
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from ultralytics.utils import LOCAL_RANK

from yolo_kd.errors import KDError

HINT = "pass unlabeled=a folder of images, a .txt list of image paths or a glob like 'frames/*.jpg'"


def find_images(src: str | Path, root: Path | None = None) -> list[str]:
    """Image files named by ``src`` (a folder, a .txt list or a glob; relative to ``root`` when not found as is)."""
    from ultralytics.data.utils import IMG_FORMATS

    from yolo_kd.data.check import split_images

    p = Path(src)
    if not p.exists() and root is not None and (root / p).exists():
        p = root / p
    if p.is_dir() or (p.is_file() and p.suffix == ".txt"):
        files = [str(f) for f in split_images(p)]
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            raise KDError(
                f"unlabeled list {p} names {len(missing)} missing file(s), e.g. {missing[0]}; lines are read as "
                "Ultralytics reads a train: list (absolute, './x' next to the list, else from the current folder)"
            )
    elif any(c in str(src) for c in "*?["):
        files = [f for f in glob.glob(str(src), recursive=True) if Path(f).suffix[1:].lower() in IMG_FORMATS]
    else:
        raise KDError(f"unlabeled={src} does not exist; {HINT}")
    if not files:
        raise KDError(f"unlabeled={src} holds no images ({', '.join(sorted(IMG_FORMATS)[:6])}, ...); {HINT}")
    return sorted(files)


def check_overlap(files: list[str], train_files: list[str]) -> None:
    """Refuse an unlabeled pool that contains labeled training images (they would count twice)."""
    both = {str(Path(f).resolve()) for f in files} & {str(Path(f).resolve()) for f in train_files}
    if both:
        raise KDError(
            f"{len(both)} unlabeled image(s) are also in the labeled train split, e.g. {sorted(both)[0]}; "
            "pass a folder that holds only images without labels"
        )


def image_shapes(files: list[str]) -> list[tuple[int, int]]:
    """(height, width) of every image from its header; one error naming the unreadable ones."""
    from PIL import Image

    shapes, bad = [], []
    for f in files:
        try:
            with Image.open(f) as im:
                shapes.append((im.height, im.width))
        except Exception:  # OSError, or Ultralytics' HEIF fallback failing on a file that is no image at all
            bad.append(f)
    if bad:
        raise KDError(f"{len(bad)} unlabeled image(s) cannot be read, e.g. {bad[0]}; remove them or fix the files")
    return shapes


class Pool(NamedTuple):
    """A checked unlabeled pool: its source as given, the image files and their (height, width)."""

    src: str
    files: list[str]
    shapes: list[tuple[int, int]]


def build_dataset(files: list[str], args, batch: int, stride: int, data: dict[str, Any], shapes: list | None = None):
    """A YOLODataset over ``files`` with the training augmentation and one empty label record per image.

    ``shapes`` are the images' (height, width) when already read (``resolve_pool``); else read here.
    """
    from ultralytics.data.dataset import YOLODataset

    class UnlabeledDataset(YOLODataset):
        def get_img_files(self, img_path):
            return list(files)

        def get_labels(self) -> list[dict]:
            return [
                {
                    "im_file": f,
                    "shape": s,
                    "cls": np.zeros((0, 1), np.float32),
                    "bboxes": np.zeros((0, 4), np.float32),
                    "segments": [],
                    "keypoints": None,
                    "normalized": True,
                    "bbox_format": "xywh",
                }  # fmt: skip
                for f, s in zip(self.im_files, shapes or image_shapes(self.im_files))
            ]

    return UnlabeledDataset(img_path="", imgsz=args.imgsz, batch_size=batch, augment=True, hyp=args, rect=False,
                            cache=None, single_cls=args.single_cls, stride=stride, pad=0.0, prefix="unlabeled: ",
                            task="detect", classes=args.classes, data=data, fraction=1.0)  # fmt: skip


class UnlabeledStream:
    """An endless, shuffled, augmented stream of unlabeled batches (each DDP rank reads its own shard)."""

    def __init__(self, files: list[str], args, batch: int, stride: int, data: dict[str, Any], rank: int = -1,
                 shapes: list | None = None):  # fmt: skip
        """Build the dataset and its loader (``batch`` images per step on this rank)."""
        from ultralytics.data.build import build_dataloader

        self.dataset = build_dataset(files, args, batch, stride, data, shapes)
        self.loader = build_dataloader(self.dataset, batch, args.workers, shuffle=True, rank=rank)
        self.epoch, self.it = 0, iter(self.loader)

    def next(self) -> dict[str, Any]:
        """The next unlabeled batch (a new shuffle after each pass)."""
        try:
            return next(self.it)
        except StopIteration:
            self.epoch += 1
            if hasattr(self.loader.sampler, "set_epoch"):
                self.loader.sampler.set_epoch(self.epoch)
            self.it = iter(self.loader)
            return next(self.it)

    def close_mosaic(self, hyp) -> None:
        """Switch mosaic off, as Ultralytics does for the labeled stream in the last ``close_mosaic`` epochs."""
        self.dataset.close_mosaic(hyp=hyp)
        if hasattr(self.loader, "reset"):
            self.loader.reset()
        self.it = iter(self.loader)


def merge(batch: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Append the unlabeled images to a labeled batch; ``n_labeled`` marks where they start. Targets stay labeled."""
    out = dict(batch)
    out["img"] = torch.cat([batch["img"], extra["img"].to(batch["img"].device)])
    for k in ("im_file", "ori_shape", "resized_shape", "ratio_pad"):
        if k in batch and k in extra:
            out[k] = list(batch[k]) + list(extra[k])
    out["n_labeled"] = batch["img"].shape[0]
    return out


def resolve_pool(src: str | None, data: dict[str, Any], conf: float | list = 0.5) -> Pool | None:
    """Check the pool named by ``unlabeled=`` (or the data yaml's ``unlabeled:`` key); None when neither is set.

    Raises:
        KDError: Missing or empty source, unreadable images, images also in the labeled train split, or a per-class
            ``pseudo_conf`` list whose length is not the class count.
    """
    from ultralytics.utils import LOGGER

    from yolo_kd.data.check import split_images

    root = Path(data.get("path") or ".")
    if not src and data.get("unlabeled"):
        src = str(root / data["unlabeled"]) if not Path(data["unlabeled"]).is_absolute() else data["unlabeled"]
    if not src:
        return None
    files = find_images(src, root)
    shapes = image_shapes(files)
    train = data["train"] if isinstance(data["train"], list) else [data["train"]]
    check_overlap(files, [str(f) for f in split_images([t if Path(t).is_absolute() else root / t for t in train])])
    if isinstance(conf, (list, tuple)) and len(conf) != data["nc"]:
        raise KDError(f"pseudo_conf has {len(conf)} thresholds for {data['nc']} classes; give one per class or one")
    LOGGER.info(f"yolo-kd: {len(files)} unlabeled images in {src}; the teacher pseudo-labels them on every batch")
    return Pool(str(src), files, shapes)


class UnlabeledHooks:
    """A task trainer's hooks for ``unlabeled=``: build the stream with the loaders, close its mosaic, merge a batch.

    Mixed in by ``KDTrainerMixin``; expects ``self.unlabeled`` (None without the option) and ``self._pool`` (the
    checked pool of a fresh run) set by its ``__init__`` / ``get_dataset``.
    """

    def _build_train_pipeline(self):
        """Ultralytics' loaders, plus the unlabeled stream (``round(batch x unlabeled_ratio)`` images per step)."""
        super()._build_train_pipeline()
        if getattr(self.args, "unlabeled", None):
            bs = max(1, round(self.train_loader.batch_size * float(self.args.unlabeled_ratio)))
            pool = self._pool  # checked at start; on resume the files are listed again
            files = pool.files if pool else find_images(self.args.unlabeled, Path(self.data.get("path") or "."))
            self.unlabeled = UnlabeledStream(files, self.args, bs, self.stride, self.data, rank=LOCAL_RANK,
                                             shapes=pool.shapes if pool else None)  # fmt: skip

    def _close_dataloader_mosaic(self):
        """Close mosaic on both streams."""
        super()._close_dataloader_mosaic()
        if self.unlabeled is not None:
            self.unlabeled.close_mosaic(copy(self.args))

    def preprocess_batch(self, batch: dict) -> dict:
        """Append this step's unlabeled images (``n_labeled`` marks them), then Ultralytics' preprocessing."""
        if self.unlabeled is not None and "n_labeled" not in batch:
            batch = merge(batch, self.unlabeled.next())
        return super().preprocess_batch(batch)
