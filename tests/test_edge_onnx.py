"""The torch-free runtime on ONNX Runtime: Ultralytics' boxes for v8/11/26 exports, as on OpenVINO, without torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import images_of, matched_boxes
from yolo_kd.errors import KDError

IMGSZ = 320


@pytest.fixture(scope="module")
def coco_onnx(tmp_path_factory, shared_assets):
    """The COCO yolov8n and yolo11n of ../shared exported to ONNX at 320 (yolov8n also to OpenVINO), a yolo26n
    (end-to-end head) carrying yolo11n's transferred layers, and 8 held-out COCO val2017 images."""
    import torch
    from ultralytics import YOLO

    from yolo_kd.tools.export import export

    weights, val = shared_assets / "weights", shared_assets / "datasets" / "coco128" / "images" / "val2017"
    if not (weights / "yolo11n.pt").exists() or not val.is_dir():
        pytest.skip(f"{weights}/yolo11n.pt or {val} not available (trained models on real images are needed)")
    root = tmp_path_factory.mktemp("coco_onnx")
    out = {"files": sorted(val.glob("*.jpg"))[:8]}
    for name in ("yolov8n", "yolo11n"):
        shutil.copy(weights / f"{name}.pt", root / f"{name}.pt")
        out[name] = export(str(root / f"{name}.pt"), format="onnx", imgsz=IMGSZ, parity_images=1, val=False)["export"]
    out["ov"] = export(str(root / "yolov8n.pt"), format="openvino", imgsz=IMGSZ, parity_images=1, val=False)["export"]
    y26 = YOLO("yolo26n.yaml").load(str(weights / "yolo11n.pt")).model  # backbone/neck trained, head untrained
    torch.save({"model": y26.half(), "train_args": {}, "version": "8.4.190"}, root / "yolo26n.pt")
    # nms=False: Ultralytics 8.4 keeps the one-to-one (NMS-free) head only when asked
    e2e = export(str(root / "yolo26n.pt"), format="onnx", imgsz=IMGSZ, parity_images=1, val=False, nms=False)
    out["yolo26n"] = e2e["export"]
    return out


@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_onnx_matches_ultralytics_predict(coco_onnx, name):
    """Same boxes, classes and scores as YOLO(onnx).predict on real images (the rule of the OpenVINO test: every box
    scoring >= 0.3 on one side is on the other; corners within half an input pixel in the original image)."""
    from ultralytics import YOLO

    from yolo_kd.edge import Detector

    det, ul = Detector(coco_onnx[name], conf=0.2), YOLO(coco_onnx[name], task="detect")
    assert det.backend.name == "onnxruntime" and det._buffer is not None  # letterboxed straight into its input
    total = 0
    for f in coco_onnx["files"]:
        r = ul.predict(str(f), imgsz=IMGSZ, conf=0.2, verbose=False)[0]
        d = det(f)
        ref, cls, conf = r.boxes.xyxy.numpy(), r.boxes.cls.numpy(), r.boxes.conf.numpy()
        scale = 0.5 * max(r.orig_shape) / IMGSZ + 0.01
        hi, dhi = conf >= 0.3, d.scores >= 0.3
        total += matched_boxes(ref[hi], cls[hi], conf[hi], d.boxes, d.classes, d.scores, scale)
        matched_boxes(d.boxes[dhi], d.classes[dhi], d.scores[dhi], ref, cls, conf, scale)
    assert total > 10


def test_onnx_end_to_end_head_matches_ultralytics(coco_onnx):
    """A YOLO26 export (one-to-one head, (1, 300, 6) rows, no NMS): every row above conf, in Ultralytics' order."""
    from ultralytics import YOLO

    from yolo_kd.edge import Detector

    ul = YOLO(coco_onnx["yolo26n"], task="detect")
    scores = Detector(coco_onnx["yolo26n"], conf=0.0)(coco_onnx["files"][0]).scores
    conf = float(np.median(scores))  # the untrained one-to-one head scores low: half of its 300 rows pass
    det = Detector(coco_onnx["yolo26n"], conf=conf)
    assert det.backend(det.to_input(det.preprocess(np.zeros((64, 64, 3), np.uint8))[0]))[0].shape[1:] == (300, 6)
    n = 0
    for f in coco_onnx["files"][:4]:
        r, d = ul.predict(str(f), imgsz=IMGSZ, conf=conf, verbose=False)[0], det(f)
        assert 0 < len(d.boxes) == len(r.boxes) < 300
        np.testing.assert_allclose(d.boxes, r.boxes.xyxy.numpy(), atol=1e-3)
        np.testing.assert_allclose(d.scores, r.boxes.conf.numpy(), atol=1e-6)
        np.testing.assert_array_equal(d.classes, r.boxes.cls.numpy().astype(int))
        n += len(d.boxes)
    assert n > 200


def test_onnx_and_openvino_agree(coco_onnx):
    """The same yolov8n as ONNX (ONNX Runtime) and as IR (OpenVINO, f32): >= 99 % of boxes matched by class and
    IoU >= 0.9, lowest IoU > 0.99, scores within 1e-3; predict_many (2 requests in flight) = one call at a time."""
    from yolo_kd.edge import Detector
    from yolo_kd.tools.parity import agreement

    ort_det, ov_det = Detector(coco_onnx["yolov8n"]), Detector(coco_onnx["ov"], precision="f32")
    files = coco_onnx["files"]
    one = [ort_det(f) for f in files]
    a = agreement([ov_det(f) for f in files], one)
    assert a["boxes"] > 20 and a["matched"] >= 0.99 and a["min_iou"] > 0.99 and a["max_score_diff"] < 1e-3, a
    for m, o in zip(ort_det.predict_many(files * 2, jobs=2), one * 2, strict=True):
        np.testing.assert_array_equal(m.boxes, o.boxes)
        np.testing.assert_array_equal(m.scores, o.scores)


def test_onnx_fast_path_equals_the_allocating_path(exported):
    """A frame letterboxed into the request's own float buffer gives what the allocating path gives (tiny model)."""
    from yolo_kd.edge import Detector
    from yolo_kd.edge.runtime import read_image

    det = Detector(exported["onnx"]["export"], conf=0.01)
    assert det.backend.name == "onnxruntime" and det._buffer.shape == (1, 3, 96, 96)
    frames = [read_image(f) for f in images_of(exported["data"])]
    for img in frames + frames[::-1]:
        fast = det(img)
        x, rp = det.preprocess(img)
        slow = det.postprocess(det.first(det.infer(det.to_input(x))), rp, img.shape[:2])
        assert len(slow.boxes) > 0
        for a, b in zip((fast.boxes, fast.scores, fast.classes), (slow.boxes, slow.scores, slow.classes)):
            np.testing.assert_array_equal(a, b)


def test_onnx_runtime_needs_neither_torch_nor_openvino(exported, tmp_path):
    """Detector and `yolo-kd predict` on an .onnx where torch, ultralytics, OpenCV and OpenVINO cannot be imported
    (the ``[edge-onnx]`` install); the boxes agree with the OpenCV path within a pixel."""
    from yolo_kd.edge import Detector

    onnx, img = exported["onnx"]["export"], images_of(exported["data"])[0]
    code = f"""
import sys, json
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {{"torch", "ultralytics", "torchvision", "cv2", "openvino"}}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from yolo_kd.edge import Detector
print(json.dumps(Detector({str(onnx)!r}, conf=0.05)({str(img)!r}).boxes.tolist()))
from yolo_kd.cli import main
assert main(["predict", "model={onnx}", "source={img.parent}", "out={tmp_path / "p.json"}"]) == 0
assert not {{"torch", "ultralytics", "cv2", "openvino"}} & set(sys.modules)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    pil = np.array(json.loads(r.stdout.splitlines()[0])).reshape(-1, 4)
    ref = Detector(onnx, conf=0.05)(img).boxes
    assert len(ref) > 0 and abs(len(pil) - len(ref)) <= max(1, len(ref) // 10)
    assert np.mean([np.abs(ref - b).max(1).min() <= 1.0 for b in pil]) >= 0.9
    assert len(json.loads((tmp_path / "p.json").read_text())) == 4


def test_onnx_bad_input(exported, tmp_path):
    """Missing, corrupt or metadata-less .onnx, an unknown provider, an OpenVINO-only setting, an unknown model kind:
    one line each naming the fix."""
    import onnx

    from yolo_kd.edge import Detector

    src = Path(exported["onnx"]["export"])
    with pytest.raises(KDError, match="does not exist; export one"):
        Detector(tmp_path / "none.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(KDError, match="ONNX Runtime cannot load") as e:
        Detector(tmp_path / "bad.onnx")
    assert "\n" not in str(e.value)
    m = onnx.load(str(src))
    del m.metadata_props[:]
    onnx.save(m, str(tmp_path / "bare.onnx"))
    with pytest.raises(KDError, match="carries no Ultralytics metadata"):
        Detector(tmp_path / "bare.onnx")
    with pytest.raises(KDError, match="no 'NoSuch' provider here; use one of .*CPU"):
        Detector(src, device="NoSuch")
    with pytest.raises(KDError, match="precision=f32 is an OpenVINO setting"):
        Detector(src, precision="f32")
    with pytest.raises(KDError, match="neither an OpenVINO IR .* nor an .onnx file"):
        Detector(exported["pt"])
    det = Detector(src, device="cpu")  # providers by short name, any case
    assert det.backend.session.get_providers() == ["CPUExecutionProvider"]


def test_onnx_requests_in_flight_each_get_their_own_thread(exported, monkeypatch):
    """Six requests started together run at once (a fixed pool of four would queue two and break the barrier)."""
    import threading

    from yolo_kd.edge.backend_onnx import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(Path(exported["onnx"]["export"]))
    barrier = threading.Barrier(6, timeout=10)
    monkeypatch.setattr(OnnxRuntimeBackend, "__call__", lambda self, x: [barrier.wait()])
    requests = [backend.request() for _ in range(6)]
    for r in requests:
        r.start()
    assert sorted(r.wait()[0] for r in requests) == list(range(6))  # every thread reached the barrier
    monkeypatch.setattr(OnnxRuntimeBackend, "__call__", lambda self, x: [x])
    requests[0].start()
    with pytest.raises(AssertionError, match="start\\(\\) while the previous inference"):
        requests[0].start()
