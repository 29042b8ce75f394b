"""Bad input: one clear line naming the problem and the fix, no run directory left behind."""

from __future__ import annotations

import pytest
import torch

from yolo_kd.cli import main
from yolo_kd.errors import KDError
from yolo_kd.trainer import KDTrainer


def test_cli_errors_are_one_line(train_args, capsys, tmp_path):
    """Unknown key, unknown method, missing teacher: exit 2 with a single 'yolo-kd: error:' line."""
    cases = [
        (["train", "methd=gkd"], "Did you mean 'method'"),
        (["train", f"teacher={train_args['teacher']}", "method=gkdd"], "unknown method 'gkdd'"),
        (["train", "teacher=missing_teacher.pt"], "not found"),
        (["train", f"teacher={train_args['teacher']}", "mimic_weight=-2", "method=mimic"], "negative"),
        (["frobnicate"], "unknown command"),
    ]
    for argv, msg in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("yolo-kd: error:") and msg in err[0], err
    assert not any(tmp_path.iterdir())


def test_teacher_not_a_detector(train_args, tmp_path):
    """A classification checkpoint as teacher is refused before any run directory exists."""
    from ultralytics.nn.tasks import ClassificationModel

    path = tmp_path / "cls.pt"
    torch.save({"model": ClassificationModel("yolov8n-cls.yaml", nc=3, verbose=False).half(), "train_args": {}}, path)
    with pytest.raises(KDError, match="not a detection model"):
        KDTrainer(overrides={**train_args, "teacher": str(path), "project": str(tmp_path / "p")})
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(KDError, match="not a readable Ultralytics checkpoint"):
        KDTrainer(overrides={**train_args, "teacher": str(tmp_path / "junk.pt"), "project": str(tmp_path / "p")})
    assert not (tmp_path / "p").exists()


def test_class_count_mismatch_and_level_mismatch(train_args, tmp_path, make_ckpt):
    """Head methods need equal nc (both counts named); different level counts are refused; no run dir left."""
    t80 = make_ckpt(tmp_path / "t80.pt", nc=80)
    project = tmp_path / "p"
    with pytest.raises(KDError, match="teacher has 80 classes but the dataset has 3"):
        KDTrainer(overrides={**train_args, "teacher": str(t80), "method": "kd", "project": str(project)})
    assert not project.exists() or not any(project.rglob("*.yaml"))
    KDTrainer(overrides={**train_args, "teacher": str(t80), "method": "mimic", "project": str(project)})  # allowed
    with pytest.raises(KDError, match="detection levels"):
        KDTrainer(overrides={**train_args, "student": "yolov8n-p2.yaml", "project": str(project)})
