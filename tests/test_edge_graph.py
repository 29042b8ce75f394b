"""Golden tests of the in-graph post-processing (yolo_kd.edge.graph) on a head output fixed by hand."""

from __future__ import annotations

import numpy as np
import pytest

ov = pytest.importorskip("openvino")

# (4 + nc, A) xywh + class scores, nc = 3, A = 4, in letterboxed pixels (large coordinates: bf16 has 2-px steps there)
HEAD = np.array(
    [
        [500.3, 503.1, 300.7, 100.0],  # x
        [400.9, 402.2, 120.1, 90.0],  # y
        [60.5, 58.3, 40.2, 10.0],  # w
        [30.7, 31.9, 20.6, 10.0],  # h
        [0.90, 0.00, 0.10, 0.05],  # class 0
        [0.10, 0.80, 0.00, 0.05],  # class 1: anchor 1 overlaps anchor 0 (IoU ~0.8) but is another class: kept
        [0.00, 0.75, 0.70, 0.20],  # class 2: anchor 1's 0.75 is not its best class; anchor 3 is below conf
    ],
    np.float32,
)


def fixed_head_model(head: np.ndarray = HEAD) -> ov.Model:
    """An IR shaped like Ultralytics' (input (1, 3, 8, 8) RGB float, output (1, 4 + nc, A)) that returns ``head``."""
    from openvino import opset13 as op

    x = op.parameter([1, 3, 8, 8], np.float32, name="images")
    zero = op.multiply(
        op.reduce_sum(x, op.constant(np.array([0, 1, 2, 3], np.int64)), keep_dims=False), op.constant(np.float32(0))
    )
    return ov.Model([op.add(op.constant(head[None]), zero)], [x], "fixed_head")


def run(model: ov.Model, precision: str, **nms) -> np.ndarray:
    """The in-graph rows [class, score, x1, y1, x2, y2] of ``model`` compiled at ``precision``."""
    from yolo_kd.edge.graph import in_graph

    compiled = ov.Core().compile_model(in_graph(model, **nms), "CPU", {"INFERENCE_PRECISION_HINT": precision})
    return compiled(np.zeros((1, 8, 8, 3), np.uint8))[0]


def test_in_graph_rows_are_the_best_class_after_per_class_nms():
    """Best class per anchor, score > conf, suppression only within a class, sorted by score; boxes xyxy exact."""
    rows = run(fixed_head_model(), "f32", conf=0.25, iou=0.7)
    xyxy = np.stack([HEAD[0] - HEAD[2] / 2, HEAD[1] - HEAD[3] / 2, HEAD[0] + HEAD[2] / 2, HEAD[1] + HEAD[3] / 2], 1)
    want = np.array([[0, 0.90, *xyxy[0]], [1, 0.80, *xyxy[1]], [2, 0.70, *xyxy[2]]], np.float32)
    np.testing.assert_allclose(rows, want, rtol=0, atol=1e-4)
    one_class = HEAD.copy()
    one_class[5, 1], one_class[4, 1] = 0.0, 0.80  # anchor 1 now class 0, IoU ~0.8 with anchor 0 > 0.7: suppressed
    rows = run(fixed_head_model(one_class), "f32", conf=0.25, iou=0.7)
    assert rows[:, 0].tolist() == [0, 2] and rows[0, 2] == pytest.approx(xyxy[0, 0], abs=1e-4)


def test_in_graph_boxes_stay_exact_where_the_cpu_defaults_to_bf16():
    """On CPUs with BF16 the default inference precision is bf16, which rounds a MatMul's inputs (a 2-px step at
    500 px). The box conversion must not go through one: it cost the FP32 IR 0.5 mAP50-95 at 640 (docs 4d)."""
    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU has no bf16: the default precision is f32")
    exact, bf16 = run(fixed_head_model(), "f32"), run(fixed_head_model(), "bf16")
    assert bf16.shape == exact.shape
    np.testing.assert_allclose(bf16[:, 2:], exact[:, 2:], rtol=0, atol=1e-3)


def test_detector_results_outlive_the_next_call(tmp_path):
    """The Detector reads OpenVINO's output buffer in place (``share_outputs``): a result must not change when the
    next frame is inferred into the same buffer."""
    import yaml
    from openvino import opset13 as op

    from yolo_kd.edge import Detector

    x = op.parameter([1, 3, 8, 8], np.float32, name="images")
    shift = op.reduce_mean(x, op.constant(np.array([0, 1, 2, 3], np.int64)), False)  # mean brightness in [0, 1]
    rows = np.zeros((4 + 3, 4), np.float32)
    rows[4, 0] = -0.5  # anchor 0's class-0 score: 0.9 on a black frame, 0.4 on a white one
    head = op.add(op.constant(HEAD[None]), op.multiply(op.constant(rows[None]), shift))
    ir = tmp_path / "m_openvino_e2e_model"
    ir.mkdir()
    from yolo_kd.edge.graph import in_graph

    ov.save_model(in_graph(ov.Model([head], [x], "moving_head")), ir / "m.xml")
    meta = {"names": {0: "a", 1: "b", 2: "c"}, "imgsz": [8, 8], "in_graph": {"conf": 0.25, "iou": 0.7, "max_det": 300}}
    (ir / "metadata.yaml").write_text(yaml.safe_dump(meta))
    det = Detector(ir, precision="f32")
    dark = det(np.zeros((8, 8, 3), np.uint8))
    first = dark.scores.copy(), dark.classes.copy(), dark.boxes.copy()
    bright = det(np.full((8, 8, 3), 255, np.uint8))
    for got, want in zip((dark.scores, dark.classes, dark.boxes), first):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(first[0], [0.9, 0.8, 0.7], atol=1e-3)  # constants saved as f16
    np.testing.assert_allclose(bright.scores, [0.8, 0.7, 0.4], atol=1e-3)


def test_numpy_decode_gives_the_same_rows_as_the_graph():
    """The numpy path's decode (best class, score > conf, per-class NMS) on the hand-made head: the graph's rows."""
    from yolo_kd.edge.ops import decode

    for head in (HEAD, HEAD[:, [3, 2, 1, 0]]):  # anchor order must not matter
        d = decode(head, conf=0.25, iou=0.7)  # (n, 6) xyxy, score, class
        rows = run(fixed_head_model(np.ascontiguousarray(head)), "f32", conf=0.25, iou=0.7)
        np.testing.assert_allclose(d[:, [5, 4, 0, 1, 2, 3]], rows, rtol=0, atol=1e-4)
    assert decode(HEAD, conf=0.95, iou=0.7).shape == (0, 6)  # nothing above conf: an empty (0, 6) array
