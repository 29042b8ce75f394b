"""Export with parity report, and the torch-free OpenVINO runtime against Ultralytics' own predictions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import EDGE_IMGSZ as IMGSZ
from tests.conftest import images_of, matched_boxes
from yolo_kd.errors import KDError
from yolo_kd.tools.parity import within_fp32


def test_parity_compare_golden():
    """Box coordinates relative (1 px floor), scores absolute; IoU and score change at confident anchors."""
    import numpy as np

    from yolo_kd.tools.parity import compare, describe

    ref = np.zeros((1, 5, 2), np.float32)  # (N, 4 + nc=1, A=2): xywh + score
    ref[0, :, 0] = [100, 100, 20, 20, 0.9]
    ref[0, :, 1] = [50, 50, 10, 10, 0.1]
    got = ref.copy()
    got[0, 0, 0] = 100.05  # 5e-4 relative
    got[0, 4, 1] = 0.1005
    p = compare(ref, got)
    assert p["box_max_rel_diff"] == pytest.approx(5e-4, rel=1e-2) and p["score_max_abs_diff"] == pytest.approx(
        5e-4, rel=1e-2
    )
    assert p["confident_anchors"] == 1 and p["box_iou_median"] == pytest.approx(400 / (400 + 2 * 20 * 0.05), rel=1e-3)
    assert "within FP32 tolerance" in describe(p, "FP32")
    got[0, 0, 0] = 104.0
    assert "WARNING" in describe(compare(ref, got), "FP32") and "box IoU with PyTorch" in describe(
        compare(ref, got), "INT8"
    )


def test_parity_reports(exported):
    """FP32 exports match PyTorch raw outputs within 1e-3 and the report carries both mAPs."""
    for key in ("ov", "onnx"):
        r = exported[key]
        assert r["precision"] == "FP32" and r["images"] == 4 and r["max_abs_diff"] <= 1e-3, r
        assert within_fp32(r) and r["score_max_abs_diff"] <= 1e-3, r
    ov = exported["ov"]
    assert not list(Path.cwd().glob("runs/detect/val-pytorch*"))  # validation folders sit beside the export
    assert (Path(ov["export"]) / "val-exported").is_dir()
    assert {"pytorch", "exported", "map50_95_drop"} <= set(ov) and abs(ov["map50_95_drop"]) <= 0.05
    assert json.loads((Path(ov["export"]) / "parity.json").read_text())["max_abs_diff"] == ov["max_abs_diff"]


@pytest.fixture(scope="module")
def coco_ir(tmp_path_factory, shared_assets):
    """The trained COCO yolov8n of ../shared exported at 320 (plain and in-graph IRs), and 32 held-out COCO images."""
    import shutil

    from yolo_kd.tools.export import export

    src, val = shared_assets / "weights" / "yolov8n.pt", shared_assets / "datasets" / "coco128" / "images" / "val2017"
    if not src.exists() or not val.is_dir():
        pytest.skip(f"{src} or {val} not available (a trained model on real images is needed)")
    root = tmp_path_factory.mktemp("coco_ir")
    shutil.copy(src, root / "yolov8n.pt")
    r = export(str(root / "yolov8n.pt"), format="openvino", imgsz=320, parity_images=2, val=False, e2e=True)
    return {"plain": r["export"], "in_graph": r["in_graph"]["export"], "files": sorted(val.glob("*.jpg"))[:32]}


def test_runtime_matches_ultralytics_predict(coco_ir):
    """Same boxes, classes and scores as YOLO(ir).predict on real images with a trained model.

    Both sides predict at conf 0.2 and every box scoring >= 0.3 on one side must be on the other: no box sits near a
    threshold, and a trained model has no near-tied, near-degenerate boxes (an untrained one at conf 0.01 kept 38 boxes
    on one CPU and 40 on another: issue 37, item 0). Corners agree within half an input pixel at 320 in the original
    image (the two letterboxes resize with different kernels).
    """
    from ultralytics import YOLO

    from yolo_kd.edge import Detector

    det = Detector(coco_ir["plain"], conf=0.2)  # the runtime's default precision, as Ultralytics runs the IR
    ul = YOLO(coco_ir["plain"], task="detect")
    total = 0
    for f in coco_ir["files"][:8]:
        r = ul.predict(str(f), imgsz=320, conf=0.2, verbose=False)[0]
        d = det(f)
        ref, cls, conf = r.boxes.xyxy.numpy(), r.boxes.cls.numpy(), r.boxes.conf.numpy()
        scale = 0.5 * max(r.orig_shape) / 320 + 0.01
        hi, dhi = conf >= 0.3, d.scores >= 0.3
        total += matched_boxes(ref[hi], cls[hi], conf[hi], d.boxes, d.classes, d.scores, scale)
        matched_boxes(d.boxes[dhi], d.classes[dhi], d.scores[dhi], ref, cls, conf, scale)
    assert total > 10


def test_predict_many_equals_one_by_one(exported):
    """predict_many (more images than infer requests: each reused) returns what single calls return; names kept."""
    from yolo_kd.edge import Detector

    files = images_of(exported["data"])
    det = Detector(exported["ov"]["export"], conf=0.01)
    many = det.predict_many(files * 3, jobs=2)
    for m, f in zip(many, files * 3, strict=True):
        one = det(f)
        np.testing.assert_array_equal(m.boxes, one.boxes)
        np.testing.assert_array_equal(m.scores, one.scores)
    assert many[0].names == {0: "Car", 1: "Pedestrian", 2: "Cyclist"}


def test_runtime_never_imports_torch(exported, tmp_path):
    """yolo_kd.edge and `yolo-kd predict` run where torch, ultralytics and even OpenCV cannot be imported (the
    ``[edge]`` install: Pillow + numpy resize); detections agree with the OpenCV path."""
    from yolo_kd.edge import Detector

    ir, img = exported["ov"]["export"], images_of(exported["data"])[0]
    code = f"""
import sys, json
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {{"torch", "ultralytics", "torchvision", "cv2"}}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from yolo_kd.edge import Detector
d = Detector({str(ir)!r}, conf=0.05)({str(img)!r})
print(json.dumps(d.boxes.tolist()))
from yolo_kd.cli import main
assert main(["predict", "model={ir}", "source={img.parent}", "out={tmp_path / "p.json"}"]) == 0
assert not {{"torch", "ultralytics", "cv2"}} & set(sys.modules)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    pil = np.array(json.loads(r.stdout.splitlines()[0])).reshape(-1, 4)
    ref = Detector(ir, conf=0.05)(img).boxes
    assert len(ref) > 0 and abs(len(pil) - len(ref)) <= max(1, len(ref) // 10)
    close = [np.abs(ref - b).max(1).min() <= 1.0 for b in pil]  # each box has a counterpart within 1 px
    assert np.mean(close) >= 0.9 and len(json.loads((tmp_path / "p.json").read_text())) == 4


def test_detector_fast_path_equals_the_allocating_path(exported):
    """A frame letterboxed into the infer request's own input buffer gives the same detections as the allocating
    path (a fresh canvas, a converted copy, the compiled model's call); to_input into a buffer is bit-identical."""
    from yolo_kd.edge import Detector
    from yolo_kd.edge.ops import letterbox, to_input
    from yolo_kd.edge.runtime import read_image

    det = Detector(exported["ov"]["export"], conf=0.01)
    assert det._buffer is not None and det._buffer.shape == (1, 3, IMGSZ, IMGSZ)
    frames = [read_image(f) for f in images_of(exported["data"])]
    x = letterbox(frames[0], (IMGSZ, IMGSZ))[0]
    buf = np.full((1, 3, IMGSZ, IMGSZ), -1.0, np.float32)
    assert to_input([x], out=buf) is buf and np.array_equal(buf, to_input([x]))
    for img in frames + frames[::-1]:  # each frame after another one: nothing stale in the buffers
        fast = det(img)
        x, rp = det.preprocess(img)
        slow = det.postprocess(det.first(det.infer(det.to_input(x))), rp, img.shape[:2])
        for a, b in zip((fast.boxes, fast.scores, fast.classes), (slow.boxes, slow.scores, slow.classes)):
            np.testing.assert_array_equal(a, b)


def test_runtime_bad_input(exported, tmp_path):
    """Folder without metadata, folder without a model, unreadable image, empty directory: one-line errors."""
    from yolo_kd.edge import Detector, list_images, read_image

    ir = Path(exported["ov"]["export"])
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in ir.glob("*.xml"):
        (bare / f.name).write_bytes(f.read_bytes())
    with pytest.raises(KDError, match="has no metadata.yaml"):
        Detector(bare)
    with pytest.raises(KDError, match="no OpenVINO .xml model"):
        Detector(tmp_path)
    (tmp_path / "bad.jpg").write_text("not an image")
    with pytest.raises(KDError, match="cannot read image"):
        read_image(tmp_path / "bad.jpg")
    det, good = Detector(ir), images_of(exported["data"])
    with pytest.raises(KDError, match="cannot read image"):  # raised with requests in flight; they are waited for
        det.predict_many([*good, tmp_path / "bad.jpg"], jobs=2)
    assert len(det.predict_many(good, jobs=2)) == len(good)  # the Detector still works
    with pytest.raises(KDError, match="no images"):
        list_images(bare)


def test_export_bad_input_and_kd_checkpoint(tmp_path, make_ckpt):
    """Missing file / non-detector errors; a KD training checkpoint yields its student as a plain checkpoint."""
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.model import KDModel
    from yolo_kd.tools.export import export, student_checkpoint

    with pytest.raises(KDError, match="not found"):
        student_checkpoint(tmp_path / "nope.pt")
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "lin.pt")
    with pytest.raises(KDError, match="holds no YOLO detect/segment/pose/obb model"):
        student_checkpoint(tmp_path / "lin.pt")
    with pytest.raises(KDError, match="int8=True needs data"):
        export(str(tmp_path / "lin.pt"), int8=True)
    s, t = DetectionModel("yolov8n.yaml", nc=3, verbose=False), DetectionModel("yolov8s.yaml", nc=3, verbose=False)
    s.args = t.args = get_cfg()
    kd = KDModel(t, s, method="mimic")
    kd.teacher_model = None  # as in the EMA copy Ultralytics saves in last.pt
    torch.save({"model": None, "ema": kd, "train_args": {}}, tmp_path / "last.pt")
    out = student_checkpoint(tmp_path / "last.pt")
    assert out.name == "last-student.pt"
    assert type(torch.load(out, weights_only=False)["model"]).__name__ == "DetectionModel"


def test_onnxsim_option(exported, tmp_path):
    """simplify=onnxsim: a simplified graph with FP32 parity, node counts in the report; OpenVINO refuses it."""
    pytest.importorskip("onnxsim")
    import shutil

    from yolo_kd.errors import KDError
    from yolo_kd.tools.export import export

    assert Path(exported["ov"]["in_graph"]["export"]).is_dir() and "in_graph" not in exported["onnx"]  # the default
    pt = tmp_path / "student.pt"
    shutil.copy(exported["pt"], pt)
    r = export(str(pt), format="onnx", imgsz=IMGSZ, simplify="onnxsim", data=str(exported["data"]), parity_images=4,
               val=False)  # fmt: skip
    assert r["simplifier"] == "onnxsim" and 0 < r["nodes"]["simplified"] < r["nodes"]["exported"], r["nodes"]
    assert within_fp32(r) and r["max_abs_diff"] <= 1e-3, r
    assert exported["onnx"]["simplifier"] == "onnxslim" and exported["onnx"]["nodes"]["exported"] > 0
    with pytest.raises(KDError, match="applies to format=onnx"):
        export(str(pt), format="openvino", simplify="onnxsim")


def test_in_graph_ir_structure_and_refusals(exported, tmp_path):
    """export e2e=True writes an IR that takes uint8 BGR and returns final rows; sync and async agree; settings the
    graph cannot honour, and other formats, are refused in one line."""
    import shutil

    from yolo_kd.edge import Detector
    from yolo_kd.errors import KDError
    from yolo_kd.tools.export import export
    from yolo_kd.tools.parity import agreement

    assert Path(exported["ov"]["in_graph"]["export"]).is_dir() and "in_graph" not in exported["onnx"]  # the default
    pt = tmp_path / "student.pt"
    shutil.copy(exported["pt"], pt)
    r = export(str(pt), format="openvino", imgsz=IMGSZ, data=str(exported["data"]), parity_images=2, val=False,
               e2e=True, conf=0.1)  # fmt: skip
    fused = Detector(r["in_graph"]["export"], precision="f32", conf=0.1)
    assert fused.in_graph == {"conf": 0.1, "iou": 0.7, "max_det": 300}
    assert fused.backend.model.input(0).get_element_type().to_string() == "u8"
    files = images_of(exported["data"])
    sync = [fused(f) for f in files]
    assert sum(len(d.boxes) for d in sync) > 0 and agreement(sync, fused.predict_many(files))["matched"] == 1.0
    with pytest.raises(KDError, match="runs NMS inside the graph"):
        Detector(r["in_graph"]["export"], conf=0.05)
    with pytest.raises(KDError, match="e2e=True builds"):
        export(str(pt), format="onnx", e2e=True)


def test_in_graph_matches_the_numpy_path_on_a_real_model(coco_ir):
    """A real COCO yolov8n (../shared) on 32 held-out COCO val2017 images at 320: the in-graph IR returns the numpy
    path's detections (>= 99 % matched by class and IoU >= 0.9, lowest IoU > 0.99, scores within 1e-3)."""
    from yolo_kd.edge import Detector
    from yolo_kd.tools.parity import agreement

    plain, fused = (Detector(f, precision="f32") for f in (coco_ir["plain"], coco_ir["in_graph"]))
    files = coco_ir["files"]
    a = agreement([plain(f) for f in files], [fused(f) for f in files])
    assert a["boxes"] > 50 and a["matched"] >= 0.99 and a["min_iou"] > 0.99 and a["max_score_diff"] < 1e-3, a
