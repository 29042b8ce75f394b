"""Numpy decoding of segmentation masks and pose keypoints, as Ultralytics' predictors do it (no torch).

Masks follow ``ultralytics.utils.ops.process_mask(..., upsample=True)`` (predict's default, ``retina_masks=False``):
prototype x coefficients, bilinear upsampling of the logits to the input size (``F.interpolate``, half-pixel centres),
``> 0``, zeroed outside the box. Keypoints follow ``scale_coords``: letterbox padding removed, divided by the gain,
clipped to the image; the visibility column is left as the model gives it.
"""

from __future__ import annotations

import numpy as np

from yolo_kd.edge.ops import linear_taps


def upsample_bilinear(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """(n, h0, w0) float -> (n, h, w), as ``torch.nn.functional.interpolate(mode="bilinear")``."""
    y0, y1, fy = linear_taps(h, x.shape[1])
    x0, x1, fx = linear_taps(w, x.shape[2])
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
    logits = (np.asarray(coefs, np.float32) @ np.asarray(protos, np.float32).reshape(c, -1)).reshape(-1, mh, mw)
    return crop_mask((upsample_bilinear(logits, *shape) > 0).astype(np.uint8), boxes)


def nearest_input(ratio_pad: tuple, shape0: tuple[int, int], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The input row and column (of an (H, W) ``shape``) nearest each original pixel centre: (h0,) and (w0,) ints."""
    gy, gx, px, py = ratio_pad
    rows = np.minimum(np.floor((np.arange(shape0[0]) + 0.5) * gy + py).astype(np.int64), shape[0] - 1)
    cols = np.minimum(np.floor((np.arange(shape0[1]) + 0.5) * gx + px).astype(np.int64), shape[1] - 1)
    return rows, cols


def unletterbox_masks(masks: np.ndarray, ratio_pad: tuple, shape0: tuple[int, int]) -> np.ndarray:
    """(n, H, W) input-size masks -> (n, h0, w0) bool on the original image (padding cut, nearest-neighbour resize)."""
    rows, cols = nearest_input(ratio_pad, shape0, masks.shape[1:])
    small = masks.astype(bool, copy=False)  # columns first, on the small masks; then whole rows (contiguous copies)
    return np.take(np.take(small, cols, axis=2), rows, axis=1)


def masks_on_image(protos: np.ndarray, coefs: np.ndarray, boxes: np.ndarray, shape: tuple[int, int],
                   ratio_pad: tuple, shape0: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``unletterbox_masks(process_mask(...))`` computed only inside each box: (keep, (n_keep, h0, w0) bool masks).

    ``keep`` marks the detections whose input-size mask is not empty (Ultralytics' predictor drops the others).
    Every mask pixel outside its box is zero, so each mask is upsampled only on the input pixels of its box (the
    same taps and float32 arithmetic as ``upsample_bilinear``: equal masks) and mapped onto the original pixels whose
    nearest input pixel lies there: O(box area) instead of O(n x H x W).
    """
    c, mh, mw = protos.shape
    h, w = shape
    n = len(coefs)
    rows, cols = nearest_input(ratio_pad, shape0, shape)
    out, keep = np.zeros((n, *shape0), bool), np.zeros(n, bool)
    if not n:
        return keep, out
    logits = (np.asarray(coefs, np.float32) @ np.asarray(protos, np.float32).reshape(c, -1)).reshape(-1, mh, mw)
    y0, y1, fy = linear_taps(h, mh)
    x0, x1, fx = linear_taps(w, mw)
    win = np.clip(np.ceil(np.asarray(boxes, np.float64)), 0, [w, h, w, h]).astype(np.int64)  # x1 <= c < x2 as ints
    for k, (a, t, b, u) in enumerate(win):  # columns a:b, rows t:u of the input
        if a >= b or t >= u:
            continue
        lg = logits[k]
        r = lg[y0[t:u]] * (1 - fy[t:u])[:, None] + lg[y1[t:u]] * fy[t:u][:, None]
        m = (r[:, x0[a:b]] * (1 - fx[a:b]) + r[:, x1[a:b]] * fx[a:b]) > 0
        if not m.any():
            continue
        keep[k] = True
        r0, r1 = np.searchsorted(rows, [t, u])  # original rows whose input row is in t:u (rows never decrease)
        c0, c1 = np.searchsorted(cols, [a, b])
        out[k, r0:r1, c0:c1] = m[rows[r0:r1] - t][:, cols[c0:c1] - a]
    return keep, out[keep]


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


def _covariance(b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries a, b, c of the covariance [[a, c], [c, b]] of the uniform distribution over each xywhr box.

    Var of a uniform side of length s is s^2 / 12; rotated by r: a = w' cos^2 + h' sin^2, b = w' sin^2 + h' cos^2,
    c = (w' - h') cos sin with w' = w^2 / 12, h' = h^2 / 12.
    """
    w, h = b[:, 2] ** 2 / 12, b[:, 3] ** 2 / 12
    cos, sin = np.cos(b[:, 4]), np.sin(b[:, 4])
    return w * cos**2 + h * sin**2, w * sin**2 + h * cos**2, (w - h) * cos * sin


def probiou(b1: np.ndarray, b2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """(n, m) probabilistic IoU of xywhr boxes (Llerena et al., arXiv 2106.06072).

    1 - the Hellinger distance of their Gaussians, from the Bhattacharyya distance
    BD = 1/8 d^T S^-1 d + 1/2 ln(det S / sqrt(det S1 det S2)), S = (S1 + S2) / 2; BD clamped to [eps, 100], eps
    placed as Ultralytics' ``batch_probiou`` places it.
    """
    a1, bb1, c1 = (v[:, None] for v in _covariance(b1))
    a2, bb2, c2 = (v[None] for v in _covariance(b2))
    dx, dy = b1[:, None, 0] - b2[None, :, 0], b1[:, None, 1] - b2[None, :, 1]
    a, b, c = a1 + a2, bb1 + bb2, c1 + c2
    det = a * b - c**2
    t1 = (a * dy**2 + b * dx**2) / (det + eps) * 0.25
    t2 = (c * -dx * dy) / (det + eps) * 0.5
    own = np.sqrt(np.clip(a1 * bb1 - c1**2, 0, None) * np.clip(a2 * bb2 - c2**2, 0, None))
    t3 = np.log(det / (4 * own + eps) + eps) * 0.5
    bd = np.clip(t1 + t2 + t3, eps, 100.0)
    return 1 - np.sqrt(1.0 - np.exp(-bd) + eps)


def nms_rotated(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Fast-NMS (Bolya et al., arXiv 1904.02689) on xywhr boxes, as Ultralytics' rotated NMS.

    A box is dropped when any higher-scoring box (kept or not) overlaps it by probiou > ``iou``; returns the kept
    indices by descending score.
    """
    order = scores.argsort()[::-1]
    ious = np.triu(probiou(boxes[order], boxes[order]), 1)
    return order[(ious > iou).sum(0) == 0]


def decode_rotated(pred: np.ndarray, conf: float, iou: float, max_det: int, nc: int, max_wh: int = 7680) -> np.ndarray:
    """One image's raw obb output (4 + nc + 1, A) -> (n, 7) x, y, w, h, score, class, angle after rotated NMS.

    Rows: xywh, class scores, angle; classes are kept apart by an offset on the centre, as Ultralytics does.
    """
    scores = pred[4 : 4 + nc]
    s = scores.max(0)
    m = np.flatnonzero(s > conf)
    s, j = s[m], scores[:, m].argmax(0).astype(np.float32)
    order = s.argsort()[::-1][:30000]
    m, s, j = m[order], s[order], j[order]
    xywhr = np.concatenate([pred[:4, m].T, pred[4 + nc :, m].T], 1)
    shifted = xywhr.copy()
    shifted[:, :2] += j[:, None] * max_wh
    keep = nms_rotated(shifted, s, iou)[:max_det]
    return np.concatenate([xywhr[keep, :4], s[keep, None], j[keep, None], xywhr[keep, 4:5]], 1)


def scale_rotated(xywhr: np.ndarray, ratio_pad: tuple) -> np.ndarray:
    """Xywhr boxes from the letterboxed input to original pixels (centre less the padding, sides over the gain)."""
    gy, gx, px, py = ratio_pad
    out = xywhr.astype(np.float32, copy=True)
    out[:, 0], out[:, 1] = (out[:, 0] - px) / gx, (out[:, 1] - py) / gy
    out[:, 2], out[:, 3] = out[:, 2] / gx, out[:, 3] / gy
    return out


def corners(xywhr: np.ndarray) -> np.ndarray:
    """(n, 4, 2) corner points of xywhr boxes, in Ultralytics' ``xywhr2xyxyxyxy`` order."""
    c, w, h, r = xywhr[:, None, :2], xywhr[:, 2:3], xywhr[:, 3:4], xywhr[:, 4:5]
    v1 = np.concatenate([w / 2 * np.cos(r), w / 2 * np.sin(r)], 1)[:, None]
    v2 = np.concatenate([-h / 2 * np.sin(r), h / 2 * np.cos(r)], 1)[:, None]
    return np.concatenate([c + v1 + v2, c + v1 - v2, c - v1 - v2, c - v1 + v2], 1)
