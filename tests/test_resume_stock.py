"""Issue 37 items 1, 3 and 9: resume writes only into the named run folder; interrupted checkpoints are stock."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from yolo_kd.errors import KDError
from yolo_kd.trainer import KDTrainer


class Interrupted(Exception):
    """Raised from on_model_save: the run stops right after epoch 1's checkpoint, as a killed run would."""


def _interrupted_run(train_args: dict, name: str, method: str = "mimic") -> KDTrainer:
    tr = KDTrainer(overrides={**train_args, "epochs": 2, "method": method, "name": name})
    tr.add_callback("on_model_save", lambda t: (_ for _ in ()).throw(Interrupted()))
    with pytest.raises(Interrupted):
        tr.train()
    return tr


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip


def test_resume_of_a_copied_run_writes_only_into_the_copy(train_args, tmp_path):
    """`cp -r` a stopped run elsewhere and resume the copy: the copy finishes, the original is not touched (it used to
    be trained into, and its best.pt/last.pt overwritten, because the checkpoint records the original folder)."""
    orig = _interrupted_run(train_args, "k9").save_dir
    moved = tmp_path / "moved" / "k9"
    shutil.copytree(orig, moved)
    before = _hashes(orig)
    tr = KDTrainer(overrides={"resume": True, "model": str(moved / "weights" / "last.pt")})
    assert tr.save_dir == moved and tr.args.method == "mimic"
    tr.train()
    assert _hashes(orig) == before, "resuming the copy changed the original run"
    epochs = [ln.split(",")[0].strip() for ln in (moved / "results.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2"]
    with pytest.raises(KDError, match="finished run"):  # resumed again after it finished: said so, nothing written
        KDTrainer(overrides={"resume": True, "model": str(moved / "weights" / "last.pt")})
    assert _hashes(orig) == before


def test_resume_refuses_a_checkpoint_outside_its_run_folder(train_args, tmp_path):
    last = _interrupted_run(train_args, "r").last
    loose = tmp_path / "loose.pt"
    shutil.copy(last, loose)
    with pytest.raises(KDError, match="not inside a run folder"):
        KDTrainer(overrides={"resume": True, "model": str(loose)})


STOCK = """
import sys
sys.modules["yolo_kd"] = None  # importing yolo_kd fails in this process
from ultralytics import YOLO
for f in sys.argv[2:]:
    m = YOLO(f)
    r = m.val(data=sys.argv[1], imgsz=64, batch=4, device="cpu", workers=0, plots=False, verbose=False)
    assert r.box.map >= 0, f
    assert len(m.predict(sys.argv[1].replace("data.yaml", "images/val"), imgsz=64, verbose=False)) > 0
    assert YOLO(f).export(format="torchscript", imgsz=64).endswith(".torchscript")
    print("STOCK-OK", f, type(m.model).__name__)
"""


def test_interrupted_checkpoints_load_validate_predict_export_without_yolo_kd(train_args, tiny_data):
    """best.pt and last.pt written mid-training (the run stops after epoch 1) are plain DetectionModel checkpoints:
    stock Ultralytics loads, validates, predicts with and exports them in a process where `import yolo_kd` fails,
    while the adapters ride along as plain tensors (resume uses them; see test_trainer)."""
    tr = _interrupted_run({**train_args, "val": True}, "stock", method="mimic+cwd")
    files = [str(tr.best), str(tr.last)]
    for f in files:
        ckpt = torch.load(f, weights_only=False)
        assert ckpt["epoch"] == 0 and type(ckpt["ema"]).__name__ == "DetectionModel"
        assert type(ckpt["ema"]).__module__.startswith("ultralytics.")
        assert any(k.startswith("kd_loss.parts.cwd") for k in ckpt["ema"].yolo_kd["state"])
    r = subprocess.run([sys.executable, "-c", STOCK, str(tiny_data), *files], capture_output=True, text=True,
                       timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("STOCK-OK") == 2 and "yolo_kd" not in r.stderr


def test_resume_checks_the_teacher_is_the_runs_own_network(train_args, tmp_path, make_ckpt):
    """Issue 37 item 2: a moved teacher (same weights, new path) resumes; another network, or a recorded teacher that
    is gone without teacher=, is refused in one line before anything is written."""
    src = tmp_path / "t" / "teacher.pt"
    src.parent.mkdir()
    shutil.copy(train_args["teacher"], src)
    tr = _interrupted_run({**train_args, "teacher": str(src)}, "t9")
    before = _hashes(tr.save_dir)
    other = make_ckpt(tmp_path / "other.pt", seed=1)
    with pytest.raises(KDError, match="is not the network"):
        KDTrainer(overrides={"resume": True, "model": str(tr.last), "teacher": str(other)})
    moved = tmp_path / "moved.pt"
    src.rename(moved)
    with pytest.raises(KDError, match="is gone; pass teacher="):
        KDTrainer(overrides={"resume": True, "model": str(tr.last)})
    assert _hashes(tr.save_dir) == before
    resumed = KDTrainer(overrides={"resume": True, "model": str(tr.last), "teacher": str(moved)})
    assert resumed.args.distill_model == str(moved)
