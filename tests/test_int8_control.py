"""Accuracy-controlled INT8 (`export int8=True max_drop=`): Ultralytics' metric on the IR, float head, the control."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from yolo_kd.errors import KDError

IMGSZ = 160


@pytest.fixture(scope="module")
def coco_small(tmp_path_factory, shared_assets):
    """The COCO yolov8n of ../shared and a copy of the 128 COCO128 train images (calibration) and 32 held-out val2017
    images (the metric), with their labels."""
    src, w = shared_assets / "datasets" / "coco128", shared_assets / "weights" / "yolov8n.pt"
    if not (src / "images" / "val2017").is_dir() or not w.exists():
        pytest.skip(f"{src} or {w} not available (a trained model on real images is needed)")
    root = tmp_path_factory.mktemp("coco_small")
    for split in ("train2017", "val2017"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for im in sorted((src / "images" / split).glob("*.jpg"))[: 128 if split == "train2017" else 32]:
            shutil.copy(im, root / "images" / split)
            if (lab := src / "labels" / split / f"{im.stem}.txt").exists():
                shutil.copy(lab, root / "labels" / split)
    names = yaml.safe_load((src / "data-heldout.yaml").read_text())["names"]
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(root), "train": "images/train2017", "val": "images/val2017",
                                    "names": names}))  # fmt: skip
    shutil.copy(w, root / "yolov8n.pt")
    from yolo_kd.tools.export import export

    ir = export(str(root / "yolov8n.pt"), format="openvino", imgsz=IMGSZ, parity_images=1, val=False, e2e=False)
    return {"data": str(data), "ir": Path(ir["export"]), "pt": root / "yolov8n.pt"}


def test_ir_map_is_ultralytics_val_of_the_ir(coco_small):
    """The metric the control optimises is the one `YOLO(ir).val()` reports at the same size (same CPU precision)."""
    import openvino as ov
    from ultralytics import YOLO

    from yolo_kd.tools.int8_control import ir_map, val_batches

    validator, batches = val_batches(coco_small["data"], IMGSZ, "val")
    names = YOLO(str(coco_small["pt"])).names
    ours = ir_map(ov.Core().compile_model(next(coco_small["ir"].glob("*.xml")), "CPU"), batches, validator, names)
    ref = YOLO(str(coco_small["ir"]), task="detect").val(
        data=coco_small["data"], imgsz=IMGSZ, batch=1, device="cpu", plots=False, verbose=False
    )
    assert len(batches) == 32 and ours > 0.05
    assert ours == pytest.approx(float(ref.box.map), abs=1e-4)
    _, some = val_batches(coco_small["data"], IMGSZ, "train", limit=5)
    assert len(some) == 5


def test_export_max_drop_keeps_the_head_float_and_writes_a_stock_ir(coco_small):
    """A generous max_drop returns nothing to float (= plain PTQ); the head (Sigmoid, DFL, head scope) is never INT8,
    the backbone's first conv is; stock Ultralytics loads and predicts the folder; the report names the result."""
    import openvino as ov
    from ultralytics import YOLO

    from yolo_kd.tools.export import export
    from yolo_kd.tools.int8_control import fake_quantized_consumers, head_scope

    r = export(str(coco_small["pt"]), format="openvino", imgsz=IMGSZ, int8=True, max_drop=100, data=coco_small["data"],
               parity_images=2, e2e=False)  # fmt: skip
    c = r["int8_control"]
    assert r["precision"] == "INT8-AC" and r["export"].endswith("_int8ac_openvino_model")
    assert c["kept_float"] == [] and c["int8"] == c["ptq"] and c["int8_layers"] == c["ptq_int8_layers"] > 50
    model = ov.Core().read_model(next(Path(r["export"]).glob("*.xml")))
    int8 = fake_quantized_consumers(model)
    head = set(head_scope(ov.Core().read_model(next(coco_small["ir"].glob("*.xml")))).names)
    assert head and not (int8 & head) and any("model.0." in n for n in int8)
    assert any(n.startswith("__module.model.22") or "/model.22/" in n for n in head)  # the Detect layer's scope
    assert (Path(r["export"]) / "metadata.yaml").exists()
    res = YOLO(r["export"], task="detect").predict(str(next(Path(coco_small["data"]).parent.rglob("*.jpg"))),
                                                   imgsz=IMGSZ, verbose=False)  # fmt: skip
    assert res[0].boxes is not None
    assert (Path(r["export"]) / "parity.json").exists() and abs(r["exported"]["mAP50-95"] - c["int8"]) < 0.02


def test_control_returns_layers_to_float_until_within_max_drop(coco_small):
    """With a max_drop below plain PTQ's drop on these images, layers go back to float and the controlled IR is within
    max_drop of FP32 (or above PTQ when everything is reverted)."""
    from yolo_kd.tools.int8_control import quantize_controlled

    c = quantize_controlled(coco_small["ir"], coco_small["data"], IMGSZ, max_drop=0.01, fraction=4 / 300)
    assert c["fp32"] - c["ptq"] > 0.0001, "precondition: PTQ on 4 images loses accuracy on these 32"
    assert c["kept_float"] and c["int8_layers"] == c["ptq_int8_layers"] - len(c["kept_float"])
    assert c["int8"] > c["ptq"]
    assert c["fp32"] - c["int8"] <= 0.0001 or c["int8_layers"] == 0


def test_max_drop_refusals(coco_small, tmp_path):
    """max_drop without int8=True or not positive, and max_drop on a non-detection IR: one line each."""
    from yolo_kd.tools.export import export
    from yolo_kd.tools.int8_control import quantize_controlled

    for kw in ({"max_drop": 0.5}, {"int8": True, "max_drop": 0}, {"int8": True, "max_drop": -1}):
        with pytest.raises(KDError, match="max_drop=.* needs int8=True and a positive drop"):
            export(str(coco_small["pt"]), data=coco_small["data"], **kw)
    seg = tmp_path / "seg_openvino_model"
    shutil.copytree(coco_small["ir"], seg)
    meta = yaml.safe_load((seg / "metadata.yaml").read_text())
    (seg / "metadata.yaml").write_text(yaml.safe_dump({**meta, "task": "segment"}))
    with pytest.raises(KDError, match="max_drop= controls detection mAP; this model's task is segment"):
        quantize_controlled(seg, coco_small["data"], IMGSZ, 0.5)


def test_max_drop_on_a_segmentation_checkpoint_is_refused_before_any_export(coco_small, tmp_path):
    """The task is read from the checkpoint, so a seg student is refused before the FP32 export writes anything."""
    from yolo_kd.tools.export import export

    seg = Path(__file__).parents[1] / "docs/bench/t1-seg-xeon/teacher-yolo11n-seg-carparts256.pt"
    pt = tmp_path / "seg.pt"
    shutil.copy(seg, pt)
    with pytest.raises(KDError, match="max_drop= controls detection mAP; this model's task is segment"):
        export(str(pt), format="openvino", int8=True, max_drop=0.5, data=coco_small["data"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.pt"]
