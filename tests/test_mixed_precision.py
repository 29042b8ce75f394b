"""Every method under bf16 autocast (CPU) and a real AMP epoch on a CUDA GPU (skipped without one)."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize(
    "method", ["gkd", "bmfi", "gkd+bmfi", "cwd+mgd+fgd+pkd", "aid+rm+pfi+skd+tar", "crosskd+bckd+gkdpaper"]
)
def test_mixed_precision_losses_finite(method):
    """Under autocast (bf16 on CPU, as AMP would run the student) every term and gradient stays finite, and the
    GKD maps are still computed in FP32 by the teacher head."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.bench.cost import batch_of
    from yolo_kd.model import KDModel

    torch.manual_seed(0)
    student, teacher = (
        DetectionModel("yolov8n.yaml", nc=3, verbose=False),
        DetectionModel("yolov8s.yaml", nc=3, verbose=False),
    )
    student.args = teacher.args = get_cfg(overrides={"imgsz": 64})
    model = KDModel(teacher, student, method=method).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, items = model.loss(batch_of(2, 64, 3, "cpu"))
    loss.sum().backward()
    kd = {k: v for k, v in items.items() if k not in {"box_loss", "cls_loss", "dfl_loss"}}
    assert torch.isfinite(loss).all() and kd and all(torch.isfinite(v) for v in kd.values())
    assert sum(float(v) for v in kd.values()) > 0
    grads = [p.grad for p in model.student_model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in model.teacher_model.parameters())


def test_mixed_precision_with_unlabeled_images():
    """Under bf16 autocast (CPU) a batch ending in unlabeled images gets teacher pseudo-labels (NMS on the
    reduced-precision teacher output) and a finite loss and gradient; the CPU stand-in for the GPU AMP test below."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.bench.cost import batch_of
    from yolo_kd.model import KDModel
    from yolo_kd.pseudo import PseudoLabeler

    torch.manual_seed(0)
    student, teacher = (DetectionModel(f"yolov8{k}.yaml", nc=3, verbose=False) for k in "ns")
    student.args = teacher.args = get_cfg(overrides={"imgsz": 64})
    model = KDModel(teacher, student, method="crosskd", pseudo=PseudoLabeler(conf=0.001)).train()
    batch = batch_of(3, 64, 3, "cpu")
    keep = batch["batch_idx"] < 2  # image 2 is unlabeled: no labels of its own
    batch = {**batch, **{k: batch[k][keep] for k in ("batch_idx", "cls", "bboxes")}, "n_labeled": 2}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, items = model.loss(batch)
    loss.sum().backward()
    assert float(items["pseudo"]) > 0 and 0 < float(items["pl_share"]) < 1
    assert torch.isfinite(loss).all() and all(torch.isfinite(torch.as_tensor(v)).all() for v in items.values())
    grads = [p.grad for p in model.student_model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in model.teacher_model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="AMP (fp16 GradScaler) needs a CUDA GPU")
@pytest.mark.parametrize("method", ["gkd+bmfi", "crosskd", "bckd"])
def test_amp_training_on_gpu(train_args, method):
    """A real AMP epoch on a GPU: every logged KD term is finite."""
    from yolo_kd.trainer import KDTrainer

    trainer = KDTrainer(overrides={**train_args, "method": method, "amp": True, "device": 0})
    trainer.train()
    assert trainer.amp and all(torch.isfinite(torch.as_tensor(v)).all() for v in trainer.tloss.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="AMP (fp16 GradScaler) needs a CUDA GPU")
def test_amp_training_on_gpu_with_unlabeled_images(train_args, tmp_path):
    """A real AMP epoch on a GPU with an unlabeled pool: the teacher's pseudo-labels reach a finite loss."""
    from yolo_kd.data.synthetic import make_synthetic_kitti
    from yolo_kd.trainer import KDTrainer

    pool = make_synthetic_kitti(tmp_path / "pool", n=6, seed=7) / "image_2"
    trainer = KDTrainer(overrides={**train_args, "method": "crosskd", "amp": True, "device": 0,
                                   "unlabeled": str(pool), "pseudo_conf": 0.001})  # fmt: skip
    trainer.train()
    assert trainer.amp and trainer.tloss["pseudo"] > 0
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in trainer.tloss.values())
