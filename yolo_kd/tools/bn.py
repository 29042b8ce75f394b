"""``yolo-kd fix-bn``: re-estimate BatchNorm statistics of checkpoints whose BatchNorm was folded away.

Weights rebuilt from fused or INT8 exports (like the COCO checkpoints in ``../shared/assets``) carry every BatchNorm
as identity-plus-bias: running mean 0, running variance 1. Evaluated they are exact, but the moment they are trained,
BatchNorm normalises with the batch's own statistics instead, the network's activations change scale, and the model
collapses (yolov8n: 43.7 -> ~3 mAP50-95 after 3 epochs on COCO128). This is the BN re-estimation fix: measure each
BatchNorm's input mean and variance on real images and re-parameterise

    w' = w * sqrt(var + eps) / sqrt(rv + eps),   b' = b + w * (mean - rm) / sqrt(rv + eps),   rm, rv <- mean, var

which leaves the eval-mode output unchanged while train-mode batch statistics now match the running ones. Only
identity BatchNorms are touched unless ``all=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from yolo_kd.batchnorm import is_identity_bn
from yolo_kd.errors import KDError


def calibration_images(data: str, n: int, imgsz: int) -> np.ndarray:
    """Up to ``n`` training images of ``data`` letterboxed as Ultralytics does, as a float batch (N, 3, S, S)."""
    import cv2
    from ultralytics.data.augment import LetterBox
    from ultralytics.data.utils import check_det_dataset

    from yolo_kd.data.check import split_images

    files = split_images(check_det_dataset(data)["train"])
    if not files:
        raise KDError(f"no training images found in {data}; fix-bn needs images to measure BatchNorm statistics")
    step = max(1, len(files) // n)
    box = LetterBox((imgsz, imgsz), auto=False)
    ims = [box(image=cv2.imread(str(f)))[:, :, ::-1].transpose(2, 0, 1) for f in files[::step][:n]]
    return np.ascontiguousarray(np.stack(ims)).astype(np.float32) / 255.0


def recalibrate(model: Any, images: np.ndarray, batch: int = 16, all_bn: bool = False) -> int:
    """Re-estimate the (identity) BatchNorms of ``model`` on ``images``; returns how many were changed."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) and (all_bn or is_identity_bn(m))]
    if not bns:
        return 0
    sums: dict[Any, list[Any]] = {b: [0.0, 0.0, 0] for b in bns}

    def hook(bn: Any, inp: tuple, _: Any) -> None:
        x = inp[0].detach().double()
        s = sums[bn]
        s[0] = s[0] + x.sum((0, 2, 3))
        s[1] = s[1] + (x * x).sum((0, 2, 3))
        s[2] += x.numel() // x.shape[1]

    handles = [b.register_forward_hook(hook) for b in bns]
    model.float().eval()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            model(torch.from_numpy(images[i : i + batch]))
    for h in handles:
        h.remove()
    with torch.no_grad():
        for b in bns:
            s0, s1, n = sums[b]
            mean = (s0 / n).float()
            var = (s1 / n - (s0 / n) ** 2).clamp_min(0).float()
            old = torch.sqrt(b.running_var + b.eps)
            b.bias.copy_(b.bias + b.weight * (mean - b.running_mean) / old)
            b.weight.copy_(b.weight * torch.sqrt(var + b.eps) / old)
            b.running_mean.copy_(mean)
            b.running_var.copy_(var)
    return len(bns)


FIX_BN_DEFAULTS = {"model": None, "data": None, "out": None, "images": 64, "imgsz": 640, "all": False}


def fix_bn(**kv: Any) -> Path:
    """CLI entry: ``fix-bn model=IN.pt data=D.yaml [out=IN-bn.pt images=64 imgsz=640 all=False]``."""
    import torch

    from yolo_kd.paths import resolve_data, resolve_weights

    if "model" not in kv or "data" not in kv:
        raise KDError("fix-bn needs model=IN.pt and data=D.yaml (images to measure BatchNorm statistics on)")
    from yolo_kd.cfg import whole

    for k in ("images", "imgsz"):
        if k in kv:
            kv[k] = whole(kv[k], k, "fix-bn", example=FIX_BN_DEFAULTS[k])
    src = Path(resolve_weights(kv["model"], "model"))
    out = Path(kv.get("out") or src.with_name(f"{src.stem}-bn.pt"))
    try:
        ckpt = torch.load(src, map_location="cpu", weights_only=False)
    except Exception as e:
        raise KDError(f"{src} is not a readable checkpoint ({type(e).__name__}); fix-bn needs a YOLO .pt") from None
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    if model is None or not hasattr(model, "modules"):
        raise KDError(f"{src} is not an Ultralytics checkpoint (no 'model'); fix-bn needs a YOLO .pt")
    from ultralytics.nn.tasks import DetectionModel

    if not isinstance(model, DetectionModel):
        raise KDError(f"{src} holds a {type(model).__name__}; fix-bn re-estimates YOLO detection checkpoints")
    imgs, size = int(kv.get("images", FIX_BN_DEFAULTS["images"])), int(kv.get("imgsz", FIX_BN_DEFAULTS["imgsz"]))
    ims = calibration_images(resolve_data(kv["data"]), imgs, size)
    n = recalibrate(model, ims, all_bn=bool(kv.get("all", False)))
    if n == 0:
        print(f"fix-bn: {src} has no identity BatchNorm; nothing to do (all=True re-estimates every BatchNorm)")
    ckpt.update(model=model.half(), ema=None, note=f"{ckpt.get('note', '')} BatchNorm re-estimated by yolo-kd fix-bn")
    from yolo_kd.checkpoint.atomic import save_atomic

    save_atomic(ckpt, out)
    print(f"fix-bn: re-estimated {n} BatchNorm layers on {len(ims)} images -> {out}")
    return out


fix_bn.keys = tuple(FIX_BN_DEFAULTS)  # the CLI checks typos against these
