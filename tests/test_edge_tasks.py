"""Masks and keypoints in the torch-free runtime: numpy decoding against Ultralytics' own ops and predictions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import matched_boxes
from yolo_kd.edge.task_ops import (
    corners,
    crop_mask,
    masks_on_image,
    nms_rotated,
    probiou,
    process_mask,
    rle,
    scale_keypoints,
    unletterbox_masks,
    upsample_bilinear,
)
from yolo_kd.errors import KDError

SEG_TEACHER = Path(__file__).resolve().parents[1] / "docs/bench/t1-seg-xeon/teacher-yolo11n-seg-carparts256.pt"


def test_upsample_and_process_mask_equal_ultralytics():
    """Bilinear upsampling = F.interpolate (half-pixel centres, edge clamp); masks = ops.process_mask(upsample=True)
    bit for bit, boxes on and off pixel edges; crop_mask keeps columns x1 <= c < x2 only."""
    import torch.nn.functional as F
    from ultralytics.utils import ops

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, 9, generator=g)
    ref_up = F.interpolate(x[None], (20, 31), mode="bilinear")[0]
    np.testing.assert_allclose(upsample_bilinear(x.numpy(), 20, 31), ref_up, atol=1e-5)
    protos, coefs = torch.randn(32, 16, 16, generator=g), torch.randn(5, 32, generator=g)
    boxes = torch.tensor([[0, 0, 64, 64], [3.5, 7.2, 40.1, 50.9], [10, 10, 11, 12], [60, 2, 64, 30], [5, 5, 5, 5.0]])
    ref = ops.process_mask(protos, coefs, boxes.clone(), (64, 64), upsample=True).numpy()
    got = process_mask(protos.numpy(), coefs.numpy(), boxes.numpy(), (64, 64))
    assert got.dtype == np.uint8 and got.shape == (5, 64, 64) and got.any()
    np.testing.assert_array_equal(got, ref)
    m = crop_mask(np.ones((1, 4, 6), np.uint8), np.array([[1.0, 1.0, 3.0, 2.5]]))
    assert m[0].tolist() == [[0] * 6, [0, 1, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0], [0] * 6]


def test_masks_inside_boxes_equal_the_full_size_path():
    """The runtime's box-window masks = input-size masks (process_mask, itself equal to Ultralytics') mapped onto the
    original image, and the same detections dropped for an empty mask: random prototypes, boxes partly outside the
    input, thin and empty boxes, letterboxes with row or column padding."""
    rng = np.random.default_rng(0)
    kept = 0
    for trial in range(60):
        h, w = [(64, 64), (96, 64), (160, 160)][trial % 3]
        protos = rng.standard_normal((32, h // 4, w // 4)).astype(np.float32)
        n = int(rng.integers(0, 6))
        coefs = (rng.standard_normal((n, 32)) * rng.choice([0.05, 1.0])).astype(np.float32)
        xy = rng.uniform(-5, w + 5, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(0, w / 2, (n, 2))], 1).astype(np.float32)
        h0, w0 = (int(v) for v in rng.integers(5, 300, 2))
        g = min(h / h0, w / w0)
        rp = (g, g, (w - w0 * g) / 2, (h - h0 * g) / 2)
        full = process_mask(protos, coefs, boxes, (h, w))
        want_keep = full.any((1, 2))
        keep, got = masks_on_image(protos, coefs, boxes, (h, w), rp, (h0, w0))
        np.testing.assert_array_equal(keep, want_keep)
        np.testing.assert_array_equal(got, unletterbox_masks(full[want_keep], rp, (h0, w0)))
        kept += int(keep.sum())
    assert kept > 20  # the cases hold real masks, not only empty ones


def test_keypoints_masks_and_rle_geometry():
    """Keypoints as ops.scale_coords (padding off, / gain, clipped; visibility kept); masks back on the original image
    by nearest pixel centre; COCO run-length counts written out by hand."""
    from ultralytics.utils import ops

    k = torch.tensor([[[10.0, 30.0, 0.9], [200.0, -5.0, 0.1], [100.0, 70.0, 0.5]]])
    rp = (0.5, 0.5, 0, 20)  # a 320x320 input from a 200x400 (h, w) image: gain 0.5, 20 rows of padding on top
    ref = ops.scale_coords((160, 200), k.clone(), (200, 400), ratio_pad=((0.5, 0.5), (0, 20)))
    got = scale_keypoints(k.numpy(), rp, (200, 400))
    np.testing.assert_allclose(got[..., :2], ref[..., :2].numpy(), atol=1e-5)
    np.testing.assert_array_equal(got[..., 2], k[..., 2].numpy())
    assert got[0, 1].tolist()[:2] == [400.0, 0.0]  # (200 - 0) / 0.5 = 400 = width: on the edge; y clipped to 0
    m = np.zeros((1, 8, 8), np.uint8)
    m[0, 3:5, 2:6] = 1  # input rows 3-4 (1-2 after 2 rows of padding), columns 2-5
    back = unletterbox_masks(m, (0.5, 0.5, 0, 2), (8, 16))  # image 8x16 -> 4x8 content, 2 rows of padding
    rows, cols = np.nonzero(back[0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (2, 5, 4, 11)
    assert rle(np.array([[0, 1], [1, 1]], bool)) == {"size": [2, 2], "counts": [1, 3]}  # column-major: 0, 1 | 1, 1
    assert rle(np.array([[1, 0, 0]], bool)) == {"size": [1, 3], "counts": [0, 1, 2]}  # starts with a zero run


def test_probiou_and_rotated_nms_by_hand_and_against_ultralytics():
    """probiou: 1 for a box with itself, by hand for two equal axis-aligned squares 2 apart (Gaussians with variance
    s^2 / 12 = 1/3: BD = 1/8 * 4 / (1/3) = 1.5, probiou = 1 - sqrt(1 - e^-1.5)), symmetric under a 90-degree turn of
    a square; equal to Ultralytics' batch_probiou; Fast-NMS keeps what TorchNMS.fast_nms keeps; corners as
    xywhr2xyxyxyxy."""
    from ultralytics.utils import ops
    from ultralytics.utils.metrics import batch_probiou
    from ultralytics.utils.nms import TorchNMS

    sq = np.array([[0, 0, 2, 2, 0.0], [2, 0, 2, 2, 0.0], [0, 0, 2, 2, np.pi / 2]], np.float64)
    p = probiou(sq, sq)
    assert p[0, 0] == pytest.approx(1.0, abs=1e-3) and p[0, 1] == pytest.approx(1 - np.sqrt(1 - np.exp(-1.5)), abs=1e-6)
    assert p[0, 2] == pytest.approx(1.0, abs=1e-3) and p[1, 0] == pytest.approx(p[0, 1], abs=1e-9)
    g = torch.Generator().manual_seed(1)
    b = torch.cat([torch.rand(40, 2, generator=g) * 50, torch.rand(40, 2, generator=g) * 20 + 2,
                   torch.rand(40, 1, generator=g) * 3.14], 1)  # fmt: skip
    got, ref = probiou(b.numpy(), b.numpy()), batch_probiou(b, b).numpy()
    off = ~np.eye(40, dtype=bool)  # the diagonal is 1 - sqrt(~eps): float32 rounding there is ~1e-4
    np.testing.assert_allclose(got[off], ref[off], atol=1e-5)
    np.testing.assert_allclose(np.diag(got), np.diag(ref), atol=2e-4)
    scores = torch.rand(40, generator=g)
    ref = TorchNMS.fast_nms(b, scores, 0.3, iou_func=batch_probiou).numpy()
    got = nms_rotated(b.numpy(), scores.numpy(), 0.3)
    assert 2 < len(got) < 40 and got.tolist() == ref.tolist()
    np.testing.assert_allclose(corners(b.numpy()), ops.xywhr2xyxyxyxy(b).numpy(), atol=1e-4)


@pytest.fixture(scope="module")
def task_models(tmp_path_factory, shared_assets):
    """The trained carparts seg model (T1's teacher, committed) and a yolov8n-pose carrying the COCO yolov8n's trained
    layers (keypoint branch untrained), exported to ONNX, with real images of their data."""
    from ultralytics import YOLO

    from yolo_kd.tools.export import export

    carparts, coco = shared_assets / "datasets/carparts-seg/images/val", shared_assets / "datasets/coco128/images"
    if not carparts.is_dir() or not (shared_assets / "weights/yolov8n.pt").exists():
        pytest.skip(f"{carparts} or weights/yolov8n.pt not available")
    root = tmp_path_factory.mktemp("task_models")
    shutil.copy(SEG_TEACHER, root / "seg.pt")
    torch.manual_seed(0)  # the class and keypoint branches start from random weights
    pose = YOLO("yolov8n-pose.yaml").load(str(shared_assets / "weights/yolov8n.pt")).model
    torch.save({"model": pose.half(), "train_args": {}, "version": "8.4.190"}, root / "pose.pt")
    obb = YOLO("yolov8n-obb.yaml").load(str(shared_assets / "weights/yolov8n.pt")).model
    torch.save({"model": obb.half(), "train_args": {}, "version": "8.4.190"}, root / "obb.pt")
    kw = {"format": "onnx", "parity_images": 1, "val": False}
    return {
        "seg": export(str(root / "seg.pt"), imgsz=256, **kw)["export"],
        "seg_ov": export(str(root / "seg.pt"), imgsz=256, format="openvino", parity_images=1, val=False),
        "pose": export(str(root / "pose.pt"), imgsz=320, **kw)["export"],
        "obb": export(str(root / "obb.pt"), imgsz=320, **kw)["export"],
        "obb_images": sorted((shared_assets / "datasets/dota8/images").rglob("*.jpg")),
        "seg_images": sorted(carparts.glob("*.jpg"))[:6],
        "pose_images": sorted((coco / "val2017").glob("*.jpg"))[:6],
    }


def test_masks_equal_ultralytics_predict(task_models):
    """A trained seg model on real carparts photos: Ultralytics' boxes and, for each, its mask (masks.data mapped onto
    the image the same way) within 0.5 % of the mask's pixels; the same on OpenVINO."""
    from ultralytics import YOLO

    from yolo_kd.edge import Detector
    from yolo_kd.edge.ops import letterbox
    from yolo_kd.edge.runtime import read_image

    assert "in_graph" not in task_models["seg_ov"]  # in-graph NMS is built for detection IRs only
    for model in (task_models["seg"], task_models["seg_ov"]["export"]):
        det = Detector(model, conf=0.2)  # OpenVINO at the device default precision, as Ultralytics runs the IR
        ul = YOLO(model, task="segment")
        assert det.task == "segment"
        masks = 0
        for f in task_models["seg_images"]:
            r, d, img = ul.predict(str(f), imgsz=256, conf=0.2, verbose=False)[0], det(f), read_image(f)
            assert d.masks is not None and d.masks.shape == (len(d.boxes), *img.shape[:2])
            if not len(r.boxes):
                continue
            ref, cls, conf = r.boxes.xyxy.numpy(), r.boxes.cls.numpy(), r.boxes.conf.numpy()
            hi = conf >= 0.3
            matched_boxes(ref[hi], cls[hi], conf[hi], d.boxes, d.classes, d.scores, 0.5 * max(img.shape) / 256 + 0.01)
            ref_m = unletterbox_masks(
                r.masks.data.numpy().astype(np.uint8), letterbox(img, (256, 256))[1], img.shape[:2]
            )
            for i in np.flatnonzero(hi):
                j = np.abs(d.boxes - ref[i]).sum(1).argmin()
                assert (d.masks[j] ^ ref_m[i]).sum() <= 0.005 * max(ref_m[i].sum(), 1)
                masks += 1
        assert masks >= 5


def test_keypoints_equal_ultralytics_predict(task_models, tmp_path):
    """A pose export on real COCO images: Ultralytics' boxes and each box's keypoints (x, y within half an input pixel
    in the original image, visibility within 1e-4); `yolo-kd predict` writes them and draws them."""
    from ultralytics import YOLO

    from yolo_kd.cli import main
    from yolo_kd.edge import Detector

    det, ul = Detector(task_models["pose"], conf=0.2), YOLO(task_models["pose"], task="pose")
    assert det.task == "pose" and det.kpt_shape == (17, 3)
    n, most = 0, (0, None)
    for f in task_models["pose_images"]:
        r, d = ul.predict(str(f), imgsz=320, conf=0.2, verbose=False)[0], det(f)
        most = max(most, (len(d.boxes), f), key=lambda t: t[0])
        assert d.keypoints.shape == (len(d.boxes), 17, 3)
        ref, conf = r.boxes.xyxy.numpy(), r.boxes.conf.numpy()
        scale = 0.5 * max(r.orig_shape) / 320 + 0.01
        for i in np.flatnonzero(conf >= 0.3):
            j = np.abs(d.boxes - ref[i]).sum(1).argmin()
            assert np.abs(d.boxes[j] - ref[i]).max() <= scale
            np.testing.assert_allclose(d.keypoints[j, :, :2], r.keypoints.data[i, :, :2].numpy(), atol=scale)
            np.testing.assert_allclose(d.keypoints[j, :, 2], r.keypoints.data[i, :, 2].numpy(), atol=1e-4)
            n += 1
    assert n >= 3
    src = most[1]  # the image with the most detections
    out = tmp_path / "p.json"
    assert main(["predict", f"model={task_models['pose']}", f"source={src}", f"out={out}", "save=True",
                 f"project={tmp_path / 'vis'}", "conf=0.2"]) == 0  # fmt: skip
    rec = json.loads(out.read_text())[0]["detections"]
    assert rec and all(len(x["keypoints"]) == 17 and len(x["keypoints"][0]) == 3 for x in rec)
    assert (tmp_path / "vis" / f"{src.stem}.jpg").is_file()


def test_seg_json_and_refusals(task_models, tmp_path, make_ckpt):
    """`yolo-kd predict` on a seg export writes each mask as COCO run-length counts that decode to the mask; a
    classification export is refused in one line."""
    from yolo_kd.cli import main
    from yolo_kd.edge import Detector
    from yolo_kd.edge.runtime import read_image

    src = task_models["seg_images"][0]
    out = tmp_path / "s.json"
    assert main(["predict", f"model={task_models['seg']}", f"source={src}", f"out={out}", "conf=0.2"]) == 0
    rec, d = json.loads(out.read_text())[0], Detector(task_models["seg"], conf=0.2)(src)
    assert len(rec["detections"]) == len(d.boxes) > 0
    m = rec["detections"][0]["mask"]
    flat = np.repeat(np.arange(len(m["counts"])) % 2, m["counts"]).astype(bool)  # runs alternate 0, 1, 0, ...
    np.testing.assert_array_equal(flat.reshape(m["size"][::-1]).T, d.masks[0])
    assert m["size"] == list(read_image(src).shape[:2])
    cls = tmp_path / "cls.onnx"
    import onnx

    g = onnx.load(str(task_models["pose"]))
    for p in g.metadata_props:
        p.value = "classify" if p.key == "task" else p.value
    onnx.save(g, str(cls))
    with pytest.raises(KDError, match="decodes detect, segment, pose and obb models; this one is 'classify'"):
        Detector(cls)


def test_rotated_boxes_equal_ultralytics_predict(task_models, tmp_path):
    """An obb export (yolov8n-obb with the COCO yolov8n's layers, head untrained) on the real DOTA8 aerial tiles: every
    rotated box, score and class of YOLO(onnx).predict, in its order; `yolo-kd predict` writes polygons and draws."""
    from ultralytics import YOLO

    from yolo_kd.cli import main
    from yolo_kd.edge import Detector

    files = task_models["obb_images"]
    if not files:
        pytest.skip("dota8 images not available")
    ul = YOLO(task_models["obb"], task="obb")
    scores = np.concatenate([Detector(task_models["obb"], conf=0.0, max_det=1000)(f).scores for f in files[:2]])
    conf = float(np.quantile(scores, 0.9))  # the untrained class branch scores low: its top tenth
    det, n = Detector(task_models["obb"], conf=conf), 0
    for f in files[:4]:
        r, d = ul.predict(str(f), imgsz=320, conf=conf, verbose=False)[0], det(f)
        assert len(d.xywhr) == len(r.obb) and d.boxes.shape == (len(d.xywhr), 4)
        np.testing.assert_allclose(d.xywhr, r.obb.xywhr.numpy(), atol=2e-3, rtol=1e-5)
        np.testing.assert_allclose(d.scores, r.obb.conf.numpy(), atol=1e-5)
        np.testing.assert_array_equal(d.classes, r.obb.cls.numpy().astype(int))
        np.testing.assert_allclose(d.boxes, r.obb.xyxy.numpy(), atol=2e-2)
        n += len(d.xywhr)
    assert n >= 10
    out = tmp_path / "o.json"
    assert main(["predict", f"model={task_models['obb']}", f"source={files[0]}", f"out={out}", f"conf={conf}",
                 "save=True", f"project={tmp_path / 'vis'}"]) == 0  # fmt: skip
    rec = json.loads(out.read_text())[0]["detections"]
    assert rec and all(len(x["polygon"]) == 4 and len(x["xywhr"]) == 5 for x in rec)


def test_edge_benchmark_times_a_seg_student_with_its_masks(tmp_path, shared_assets):
    """`benchmark edge` on a seg student (T1's carparts teacher): its own task's mAP column (mask mAP50-95, from stock
    Ultralytics val) beside the box mAP, and the end-to-end columns through the torch-free runtime's masks."""
    from yolo_kd.bench.edge import run_edge_benchmark

    src = shared_assets / "datasets" / "carparts-seg"
    if not src.is_dir():
        pytest.skip(f"{src} not available")
    data = tmp_path / "carparts-seg"
    shutil.copytree(src, data)
    shutil.copy(SEG_TEACHER, tmp_path / "seg.pt")
    table = run_edge_benchmark(str(tmp_path / "seg.pt"), str(data / "data.yaml"), imgsz=128, formats="onnx",
                               runs=2, warmup=1, e2e_images=2)  # fmt: skip
    head = next(ln for ln in table.splitlines() if ln.startswith("| format"))
    row = next(ln for ln in table.splitlines() if ln.startswith("| onnx")).split("|")
    assert "(segment)" in table and "box mAP50-95 | seg mAP50-95 |" in head
    assert 0 < float(row[9]) <= float(row[8]) + 0.2 and row[10].count("/") == 2 and row[12].count("/") == 2
    assert float(row[14]) > 0  # first result (s)
