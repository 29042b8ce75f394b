"""The real-data footing of `benchmark kd preset=real`: the fixed train subset, repaired weights, asset lookup."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from yolo_kd.bench.footing import assets_dir, repaired, subset
from yolo_kd.errors import KDError


def test_subset_is_fixed_absolute_and_the_same_from_a_relative_path(tiny_data, tmp_path, monkeypatch):
    """The same seed picks the same images whatever path names the data; the yaml records absolute paths (a relative
    data= used to nest the path: 'helmet/runs/bench/.../helmet/images'); val is untouched."""
    root = tmp_path / "d"
    shutil.copytree(tiny_data.parent, root)
    d = yaml.safe_load((root / "data.yaml").read_text())
    (root / "data.yaml").write_text(yaml.safe_dump({k: v for k, v in d.items() if k != "path"}))
    first = yaml.safe_load(subset(root / "data.yaml", 5).read_text())
    picked = sorted(p.name for p in Path(first["train"]).iterdir())
    monkeypatch.chdir(tmp_path)
    again = yaml.safe_load(subset(Path("d/data.yaml"), 5).read_text())
    assert Path(again["train"]).is_absolute() and Path(again["train"]).is_dir() and Path(again["val"]).is_dir()
    assert sorted(p.name for p in Path(again["train"]).iterdir()) == picked and len(picked) == 5
    assert Path(again["val"]) == (root / d["val"]).resolve()
    assert subset(root / "data.yaml", 10**6) == root / "data.yaml"  # more than there are: the full split


def test_repaired_fixes_identity_batchnorm_once_and_leaves_real_statistics(tiny_data, tmp_path, make_ckpt):
    """A checkpoint whose BatchNorms are identity (as the shared INT8-rebuilt weights) is re-estimated into out/ once;
    one with real statistics is used as it is."""
    from ultralytics.nn.tasks import DetectionModel

    m = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    for bn in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)):
        bn.running_var.fill_(1 - bn.eps)
    torch.save({"model": m.half(), "train_args": {}}, tmp_path / "id.pt")
    out = repaired(tmp_path / "id.pt", tiny_data, tmp_path / "w", 64)
    assert out == tmp_path / "w" / "id-bn.pt" and out.exists()
    stamp = out.stat().st_mtime_ns
    assert repaired(tmp_path / "id.pt", tiny_data, tmp_path / "w", 64).stat().st_mtime_ns == stamp  # cached
    real = make_ckpt(tmp_path / "real.pt")
    ck = torch.load(real, weights_only=False)
    for bn in (x for x in ck["model"].modules() if isinstance(x, torch.nn.BatchNorm2d)):
        bn.running_mean.fill_(0.5)
    torch.save(ck, real)
    assert repaired(real, tiny_data, tmp_path / "w", 64) == real


def test_assets_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_KD_ASSETS", str(tmp_path))
    assert assets_dir() == tmp_path
    from yolo_kd.bench.footing import asset

    with pytest.raises(KDError, match="YOLO_KD_ASSETS"):
        asset("datasets/helmet", "the helmet photos")


@pytest.mark.parametrize(("task", "cfg"), [("segment", "yolov8n-seg.yaml"), ("pose", "yolov8n-pose.yaml")])
def test_task_students_start_from_the_detectors_layers(task, cfg, tmp_path, make_ckpt):
    """real-seg / real-pose build their students with Ultralytics' transfer: a task checkpoint whose backbone equals
    the detector's, made once and reused."""
    import torch
    from ultralytics import YOLO

    from yolo_kd.bench.footing import as_task
    from yolo_kd.bench.presets import PRESETS

    assert PRESETS[f"real-{'seg' if task == 'segment' else task}"]["student_cfg"] == cfg
    det = make_ckpt(tmp_path / "det.pt", cfg="yolov8n.yaml", nc=3)
    out = as_task(det, cfg, tmp_path / "w")
    m = YOLO(str(out))
    assert m.task == task and as_task(det, cfg, tmp_path / "w") == out
    a = torch.load(det, weights_only=False)["model"].float().state_dict()
    b = m.model.state_dict()
    assert torch.equal(a["model.0.conv.weight"], b["model.0.conv.weight"])  # first conv transferred


def test_every_benchmark_teacher_is_tracked_by_git():
    """A teacher a benchmark table or test names (docs/bench/*/teacher-*.pt) is in git: '*.pt' is ignored, and the
    seg teacher once existed only in a working tree, so CI's clean checkout could not find it."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    found = sorted(p.relative_to(root).as_posix() for p in root.glob("docs/bench/*/teacher-*.pt"))
    tracked = subprocess.run(
        ["git", "ls-files", "docs/bench"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert found and [f for f in found if f not in tracked] == []
