"""Numpy decoding of segmentation masks and pose keypoints, as Ultralytics' predictors do it (no torch).

Masks follow ``ultralytics.utils.ops.process_mask(..., upsample=True)`` (predict's default, ``retina_masks=False``):
prototype x coefficients, bilinear upsampling of the logits to the input size (``F.interpolate``, half-pixel centres),
``> 0``, zeroed outside the box. Keypoints follow ``scale_coords``: letterbox padding removed, divided by the gain,
clipped to the image; the visibility column is left as the model gives it.
"""

from __future__ import annotations

import numpy as np


def _taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of linear interpolation with half-pixel centres (align_corners=False)."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)


def upsample_bilinear(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """(n, h0, w0) float -> (n, h, w), as ``torch.nn.functional.interpolate(mode="bilinear")``."""
    y0, y1, fy = _taps(h, x.shape[1])
    x0, x1, fx = _taps(w, x.shape[2])
    rows = x[:, y0] * (1 - fy)[None, :, None] + x[:, y1] * fy[None, :, None]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


def crop_mask(masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Zero each (H, W) mask outside its xyxy box (columns x1 <= c < x2, rows y1 <= r < y2), in place."""
    _, h, w = masks.shape
    c, r = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    x1, y1, x2, y2 = (boxes[:, i, None] for i in range(4))
    masks *= ((c >= x1) & (c < x2))[:, None, :]
    masks *= ((r >= y1) & (r < y2))[:, :, None]
    return masks


def process_mask(protos: np.ndarray, coefs: np.ndarray, boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Binary (n, H, W) uint8 masks at the input size ``shape`` (h, w).

    From (32, mh, mw) prototypes, (n, 32) coefficients and xyxy ``boxes`` in input pixels.
    """
    c, mh, mw = protos.shape
    if not len(coefs):
        return np.zeros((0, *shape), np.uint8)
    logits = (coefs.astype(np.float32) @ protos.astype(np.float32).reshape(c, -1)).reshape(-1, mh, mw)
    return crop_mask((upsample_bilinear(logits, *shape) > 0).astype(np.uint8), boxes)


def unletterbox_masks(masks: np.ndarray, ratio_pad: tuple, shape0: tuple[int, int]) -> np.ndarray:
    """(n, H, W) input-size masks -> (n, h0, w0) bool on the original image (padding cut, nearest-neighbour resize)."""
    gy, gx, px, py = ratio_pad
    h0, w0 = shape0
    rows = np.minimum(np.floor((np.arange(h0) + 0.5) * gy + py).astype(np.int64), masks.shape[1] - 1)
    cols = np.minimum(np.floor((np.arange(w0) + 0.5) * gx + px).astype(np.int64), masks.shape[2] - 1)
    return masks[:, rows][:, :, cols].astype(bool)


def scale_keypoints(kpts: np.ndarray, ratio_pad: tuple, shape0: tuple[int, int]) -> np.ndarray:
    """(n, K, 2 or 3) keypoints in input pixels -> original pixels (x, y clipped to the image; visibility kept)."""
    gy, gx, px, py = ratio_pad
    out = kpts.astype(np.float32, copy=True)
    out[..., 0] = np.clip((out[..., 0] - px) / gx, 0, shape0[1])
    out[..., 1] = np.clip((out[..., 1] - py) / gy, 0, shape0[0])
    return out


def rle(mask: np.ndarray) -> dict:
    """COCO uncompressed run-length encoding of a (h, w) bool mask (column-major runs, starting with zeros)."""
    flat = np.asarray(mask, bool).ravel(order="F")
    edges = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]]))
    counts = ([0] if flat.size and flat[0] else []) + runs.tolist()
    return {"size": list(mask.shape), "counts": counts}
