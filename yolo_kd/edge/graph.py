"""Pre- and post-processing inside the OpenVINO graph: uint8 BGR HWC in, final boxes out.

``in_graph(ir)`` takes an Ultralytics OpenVINO IR (input RGB NCHW float in [0, 1], output (1, 4 + nc, A) xywh +
class scores) and returns the same network with, before it, OpenVINO's PrePostProcessor (u8, NHWC, BGR -> RGB,
/255, NCHW) and, after it, what Ultralytics' ``non_max_suppression`` does at predict time: one class per box (the
best), score > ``conf``, per-class IoU suppression at ``iou`` in one pass (boxes offset by class x ``MAX_WH``, as
Ultralytics), at most ``max_det``, sorted by score. Its output is (n, 6) rows ``[class, score, x1, y1, x2, y2]`` in
letterboxed-input pixels. Letterboxing and the mapping back to the original image stay outside (cheap on uint8); the
runtime (``Detector``) detects such an IR.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from yolo_kd.edge.ops import MAX_WH


def in_graph(model, conf: float = 0.25, iou: float = 0.7, max_det: int = 300):
    """The IR ``model`` (an ``openvino.Model``) with pre-processing and NMS built in (a new ``openvino.Model``)."""
    import openvino as ov
    from openvino import opset13 as op
    from openvino.preprocess import ColorFormat, PrePostProcessor

    out = model.get_results()[0].input_value(0)  # the head's output (1, 4 + nc, A), not the Result node
    nc = out.get_partial_shape()[1].get_length() - 4

    def i64(*v: int):
        return op.constant(np.array(v, np.int64))

    def head_rows(lo: int, hi: int):  # rows lo:hi of the head output, (1, hi - lo, A): contiguous, no transpose
        return op.slice(out, i64(lo), i64(hi), i64(1), i64(1))

    xy, wh = head_rows(0, 2), head_rows(2, 4)
    half = op.multiply(wh, op.constant(np.float32(0.5)))
    # element-wise, not a MatMul: CPUs with bf16 run MatMul in bf16 by default (1-2 px off at 640; mAP50-95 -0.5)
    boxes = op.concat([op.subtract(xy, half), op.add(xy, half)], 1)  # (1, 4, A) xyxy
    # best class only (multi_label=False), along the class rows: already NMS's (batch, class, box) score layout
    top = op.topk(head_rows(4, 4 + nc), op.constant(np.int64(1)), 1, "max", "none", "i32")
    best, cls = top.output(0), op.convert(top.output(1), ov.Type.f32)  # (1, 1, A) each
    boxes = op.transpose(boxes, i64(0, 2, 1))  # (1, A, 4): a 4-row transpose, not the (4 + nc)-row one
    cls = op.reshape(cls, i64(1, -1, 1), False)  # (1, A, 1), the same memory
    offset = op.multiply(cls, op.constant(np.float32(MAX_WH)))  # per-class NMS in one pass, as Ultralytics
    nms = op.non_max_suppression(  # NonMaxSuppression-9 (MulticlassNms crashed the CPU plugin in f32, 2026.4)
        op.add(boxes, offset), best, op.constant(np.array([int(max_det)], np.int64)),
        op.constant(np.array([float(iou)], np.float32)), op.constant(np.array([float(conf)], np.float32)),
        box_encoding="corner", sort_result_descending=True, output_type="i32",
    )  # fmt: skip
    idx, sel = nms.output(0), nms.output(1)  # (n, 3) [batch, 0, box], (n, 3) [batch, 0, score]

    def col(x, i: int):
        return op.gather(x, i64(i), op.constant(np.int64(1)))

    kept = op.squeeze(col(idx, 2), i64(1))  # (n,) anchor index of each kept box

    def pick(x):  # rows of a (1, A, k) tensor at the kept boxes -> (n, k)
        return op.gather(op.squeeze(x, i64(0)), kept, op.constant(np.int64(0)))

    rows = op.concat([pick(cls), col(sel, 2), pick(boxes)], 1)  # [class, score, x1, y1, x2, y2]
    rows.output(0).get_tensor().set_names({"detections"})
    m = ov.Model([rows.output(0)], model.get_parameters(), "yolo_in_graph")
    ppp = PrePostProcessor(m)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    return ppp.build()


def read_metadata(export_path: str | Path) -> dict:
    """The ``metadata.yaml`` Ultralytics writes beside an export ({} when there is none)."""
    import yaml

    p = Path(export_path)
    meta = (p if p.is_dir() else p.parent) / "metadata.yaml"
    return (yaml.safe_load(meta.read_text()) or {}) if meta.is_file() else {}


def write_in_graph(folder: str | Path, conf: float = 0.25, iou: float = 0.7, max_det: int = 300) -> Path:
    """Write ``<folder>`` 's IR with in-graph pre/post-processing as a sibling ``*_e2e_model`` folder; return it."""
    import openvino as ov
    import yaml

    src = Path(folder)
    xml = next(iter(sorted(src.glob("*.xml"))))
    dst = src.with_name(src.name.replace("_openvino_model", "") + "_openvino_e2e_model")
    dst.mkdir(parents=True, exist_ok=True)
    ov.save_model(in_graph(ov.Core().read_model(xml), conf, iou, max_det), dst / xml.name)
    meta = read_metadata(src)
    meta["in_graph"] = {"conf": float(conf), "iou": float(iou), "max_det": int(max_det)}
    (dst / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return dst
