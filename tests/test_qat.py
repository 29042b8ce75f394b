"""Distillation-aware INT8: ``quantize=8`` fake-quantizes the student only, training distills into it, and the
checkpoint exports to a Q/DQ ONNX graph and an INT8 OpenVINO IR that match the PyTorch QAT model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("modelopt", reason="QAT needs the [qat] extra (nvidia-modelopt)")


def test_kd_qat_quantizes_student_only_and_exports(train_args):
    import onnx
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import is_qat

    from yolo_kd import KDTrainer
    from yolo_kd.errors import KDError
    from yolo_kd.tools.export import export

    t = KDTrainer(overrides={**train_args, "epochs": 1, "quantize": 8, "method": "mimic"})
    t.train()
    assert is_qat(t.model.student_model) and not is_qat(t.model.teacher_model)
    assert t.args.quantize == 8 and float(t.tloss["mimic"]) > 0  # the KD term trained the QAT student
    ckpt = torch.load(t.last, weights_only=False)
    assert ckpt["modelopt"] and ckpt["train_args"]["quantize"] == 8
    y = YOLO(str(t.best))  # stock Ultralytics restores the fake-quantization
    assert is_qat(y.model)
    onnx_file = y.export(format="onnx", imgsz=64)
    qdq = sum(n.op_type in {"QuantizeLinear", "DequantizeLinear"} for n in onnx.load(onnx_file).graph.node)
    assert qdq > 100
    before = sorted(Path(t.best).parent.iterdir())
    with pytest.raises(KDError, match="QAT checkpoint.*int8=True alone"):  # accuracy control has nothing to control
        export(model=str(t.best), format="openvino", int8=True, max_drop=0.5, imgsz=64, data=train_args["data"])
    assert sorted(Path(t.best).parent.iterdir()) == before  # refused before anything was written
    r = export(model=str(t.best), format="openvino", imgsz=64, data=train_args["data"], parity_images=2, val=False)
    assert r["precision"] == "INT8-QAT" and r["max_abs_diff"] < 1.0
    meta = (Path(r["export"]) / "metadata.yaml").read_text()
    assert "Pedestrian" in meta and "qat: true" in meta and "end2end: false" in meta


def test_kd_qat_resume_after_kill_keeps_quantization(train_args, tmp_path):
    """kill -9 during epoch 2 of a KD-QAT run, resume=True: the run finishes and its checkpoint is still QAT."""
    import signal

    from test_reliability import _run

    base = {**train_args, "epochs": 2, "batch": 12, "nbs": 12, "quantize": 8, "method": "mimic", "val": False}
    log = tmp_path / "log.jsonl"
    assert _run({**base, "name": "q"}, log, kill_at=1000) == -signal.SIGKILL
    last = Path(base["project"]) / "q" / "weights" / "last.pt"
    assert torch.load(last, weights_only=False)["modelopt"]
    assert _run({"resume": str(last), "teacher": base["teacher"]}, log) == 0
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["modelopt"] and ckpt["train_args"]["quantize"] == 8 and ckpt["epoch"] == -1  # finished, still QAT
