"""Export parity in terms that mean something: box coordinates relative, scores absolute.

For reduced precision: the box IoU and score change at the anchors a user would keep. The inputs compared (sample
images, raw outputs of the PyTorch student and of each export) are read here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

MAP_DROP_WARN = 0.01  # mAP50-95 drop that is reported as a warning

BOX_REL_TOL = 1e-3  # FP32: max relative difference of box coordinates (pixels, floor 1 px)
SCORE_TOL = 1e-3  # FP32: max absolute difference of class probabilities
CONF = 0.25  # anchors compared for IoU / score change: the reference scores a class above Ultralytics' predict conf


def split(out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(boxes (N, A, 4), class scores (N, A, K)) of raw detector outputs.

    Handles Ultralytics' (N, 4 + nc, A) xywh layout and the end-to-end (N, max_det, 6) xyxy+score+class layout.
    """
    if out.ndim == 3 and out.shape[-1] == 6 and out.shape[1] > 6:
        return out[..., :4], out[..., 4:5]
    t = out.transpose(0, 2, 1)
    return t[..., :4], t[..., 4:]


def xyxy(b: np.ndarray, from_xywh: bool) -> np.ndarray:
    """Boxes as xyxy."""
    if not from_xywh:
        return b
    return np.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], -1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of corresponding xyxy boxes."""
    wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def compare(ref: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    """Parity of exported outputs ``got`` against the PyTorch ``ref`` (same images, same layout)."""
    e2e = ref.ndim == 3 and ref.shape[-1] == 6 and ref.shape[1] > 6
    (rb, rs), (gb, gs) = split(ref), split(got)
    rel = np.abs(rb - gb) / np.maximum(np.abs(rb), 1.0)
    keep = rs.max(-1) > CONF
    ious = iou(xyxy(rb[keep], not e2e), xyxy(gb[keep], not e2e)) if keep.any() else np.ones(0)
    ds = np.abs(rs - gs).max(-1)[keep] if keep.any() else np.zeros(0)
    return {
        "box_max_rel_diff": float(rel.max()),
        "score_max_abs_diff": float(np.abs(rs - gs).max()),
        "confident_anchors": int(keep.sum()),
        "box_iou_median": float(np.median(ious)) if len(ious) else None,
        "box_iou_p5": float(np.percentile(ious, 5)) if len(ious) else None,
        "score_change_mean": float(ds.mean()) if len(ds) else None,
        "score_change_max": float(ds.max()) if len(ds) else None,
    }


def within_fp32(p: dict[str, Any]) -> bool:
    """True when an FP32 export matches PyTorch to float precision on boxes and scores."""
    return p["box_max_rel_diff"] <= BOX_REL_TOL and p["score_max_abs_diff"] <= SCORE_TOL


def describe(p: dict[str, Any], precision: str) -> str:
    """One or two lines a user reads: FP32 within tolerance or not; otherwise what the precision change does."""
    head = f"boxes max rel diff {p['box_max_rel_diff']:.1e}, scores max abs diff {p['score_max_abs_diff']:.1e}"
    if precision == "FP32":
        ok = within_fp32(p)
        return head + ("  (within FP32 tolerance)" if ok else f"  WARNING: above the FP32 tolerance "
                       f"(boxes {BOX_REL_TOL:.0e} relative, scores {SCORE_TOL:.0e})")  # fmt: skip
    if not p["confident_anchors"]:
        return head + f"; no anchor scored above {CONF} on these images"
    return (
        f"{precision} changes what the model sees by design: on the {p['confident_anchors']} anchors scoring > {CONF}, "
        f"box IoU with PyTorch median {p['box_iou_median']:.3f} (5th pct {p['box_iou_p5']:.3f}), class score change "
        f"mean {p['score_change_mean']:.3f} (max {p['score_change_max']:.3f}); the mAP line below is the verdict"
    )


def agreement(a, b, min_iou: float = 0.9) -> dict[str, float]:
    """How two lists of Detections (same images, two inference paths) agree.

    Greedy one-to-one matches in ``a``'s score order: same class, IoU >= ``min_iou``. Returns the box count of ``a``,
    the matched fraction (of the larger side per image), and over the matched pairs the lowest IoU and the largest
    score difference.
    """
    n = matched = 0
    ious, dscore = [], 0.0
    for x, y in zip(a, b):
        n += max(len(x.boxes), len(y.boxes))
        free = np.ones(len(y.boxes), bool)
        for box, score, cls in zip(x.boxes, x.scores, x.classes):
            o = np.where(free & (y.classes == cls), iou(box[None], y.boxes), 0.0)
            if len(o) and o.max() >= min_iou:
                k = int(o.argmax())
                free[k] = False
                matched += 1
                ious.append(float(o[k]))
                dscore = max(dscore, abs(float(score) - float(y.scores[k])))
    return {"boxes": float(sum(len(x.boxes) for x in a)), "matched": matched / max(n, 1),
            "min_iou": min(ious, default=1.0), "max_score_diff": dscore}  # fmt: skip


def detections_map(dets: list, labels: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """mAP50 and mAP50-95 of Detections against ground truth, with Ultralytics' matching and AP.

    Args:
        dets (list[Detections]): One per image (boxes xyxy in original pixels, scores, classes).
        labels (list[tuple]): Per image (classes (M,), boxes (M, 4) xyxy in original pixels).

    Returns:
        (tuple[float, float]): mAP50, mAP50-95 over the classes present in ``labels``.
    """
    from types import SimpleNamespace

    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import ap_per_class, box_iou

    iouv = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))  # the validator's own matching reads only this
    tp, conf, pred_cls, target_cls = [], [], [], []
    for d, (cls, boxes) in zip(dets, labels):
        order = np.argsort(-d.scores)
        pc, pb = torch.as_tensor(d.classes[order]), torch.as_tensor(d.boxes[order], dtype=torch.float32)
        iou = box_iou(torch.as_tensor(boxes, dtype=torch.float32), pb)
        tp.append(DetectionValidator.match_predictions(iouv, pc, torch.as_tensor(cls), iou).numpy())
        conf.append(d.scores[order])
        pred_cls.append(d.classes[order])
        target_cls.append(cls)
    ap = ap_per_class(*(np.concatenate(x) for x in (tp, conf, pred_cls, target_cls)))[5]
    return float(ap[:, 0].mean()), float(ap.mean())


def print_report(r: dict[str, Any]) -> None:
    """Print the parity report; mismatches and mAP drops are flagged loudly."""
    print(f"parity {r['format']} {r['precision']} vs PyTorch on {r['images']} images: {describe(r, r['precision'])}")
    if "device_default" in r:
        print(f"  (compared at OpenVINO inference precision f32; with the CPU plugin's default precision, which is "
              f"bf16 where the CPU has it: {describe(r['device_default'], 'device-default')})")  # fmt: skip
    if "exported" in r:
        p, e = r["pytorch"], r["exported"]
        print(
            f"mAP50-95 PyTorch {p['mAP50-95']:.4f} -> exported {e['mAP50-95']:.4f} (drop {r['map50_95_drop']:+.4f}); "
            f"mAP50 {p['mAP50']:.4f} -> {e['mAP50']:.4f}"
        )
        if r["map50_95_drop"] > MAP_DROP_WARN:
            print(f"WARNING: the exported model loses {100 * r['map50_95_drop']:.1f} mAP50-95 points")
    if "int8_control" in r:
        c = r["int8_control"]
        kept = ", ".join(c["kept_float"]) if c["kept_float"] else "none (plain PTQ was already within max_drop)"
        print(
            f"INT8 accuracy control (max_drop={c['max_drop']} points, {c['seconds']:.0f} s): mAP50-95 on val FP32 "
            f"{100 * c['fp32']:.2f}, plain PTQ {100 * c['ptq']:.2f}, controlled {100 * c['int8']:.2f}; "
            f"{c['int8_layers']} of {c['ptq_int8_layers']} INT8 layers kept INT8; returned to float: {kept}"
        )
    if "in_graph" in r:
        g = r["in_graph"]
        print(f"in-graph pre/post-processing: {g['export']}; vs the numpy path on {r['images']} images: "
              f"{g['boxes']:.0f} boxes, {100 * g['matched']:.1f} % matched (same class, IoU >= 0.9), lowest IoU "
              f"{g['min_iou']:.4f}, max score diff {g['max_score_diff']:.1e}")  # fmt: skip
    if "nodes" in r:
        print(f"ONNX graph ({r['simplifier']}): " + ", ".join(f"{k} {v} nodes" for k, v in r["nodes"].items()))
    print(f"exported: {r['export']}")


def sample_images(data: str | None, n: int) -> list[np.ndarray]:
    """Up to ``n`` BGR images from the dataset's val split, else Ultralytics' bundled sample images."""
    import cv2
    from ultralytics.utils import ASSETS

    files: list[Path] = []
    if data:
        from ultralytics.data.utils import check_det_dataset

        from yolo_kd.data.check import split_images

        files = split_images(check_det_dataset(data)["val"])
    files = files or sorted(ASSETS.glob("*.jpg"))
    return [cv2.imread(str(f)) for f in files[:n]]


def raw_outputs(
    model_path: str, images: list[np.ndarray], imgsz: int, fmt: str, ov_precision: str = "", end2end: bool = False
) -> np.ndarray:
    """Raw (N, 4 + nc, A) outputs of the exported model or, for ``fmt='pt'``, the PyTorch student in FP32.

    ``ov_precision`` sets OpenVINO's INFERENCE_PRECISION_HINT (``f32``); empty keeps the device default, which is
    bf16 on CPUs with native bf16 (e.g. AMD Zen 4, Intel Sapphire Rapids) even for an FP32 IR. ``end2end``: the
    PyTorch model answers with its one-to-one head's (N, 300, 6) rows, as an NMS-free export (``nms=False``) does.
    """
    from yolo_kd.edge.ops import letterbox, to_input

    x = np.concatenate([to_input([letterbox(im, (imgsz, imgsz))[0]]) for im in images])
    if fmt == "pt":
        import torch
        from ultralytics.nn.tasks import load_checkpoint

        m = load_checkpoint(model_path)[0].float().eval()
        if hasattr(m, "end2end"):
            m.end2end = end2end
        with torch.no_grad():
            outs = [m(torch.from_numpy(xi[None]))[0] for xi in x]  # a seg model's is (predictions, prototypes)
            return np.concatenate([(o[0] if isinstance(o, tuple) else o).numpy() for o in outs])
    if fmt == "onnx":
        import onnxruntime as ort

        s = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        return np.concatenate([s.run(None, {s.get_inputs()[0].name: xi[None]})[0] for xi in x])
    import openvino as ov

    xml = next(Path(model_path).glob("*.xml"))
    c = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": ov_precision} if ov_precision else {})
    return np.concatenate([c(xi[None])[0] for xi in x])
