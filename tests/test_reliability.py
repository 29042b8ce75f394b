"""Crash safety and safe loading: SIGKILL mid-epoch then resume=True, atomic checkpoint writes, safe_load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

# a KD run with one batch per epoch (all 12 training images) and no random augmentation, so every epoch sees the same
# batch with or without an interruption (Ultralytics' sampler draws a new order per epoch and restarts it on resume)
RUN = """
import json, os, signal, sys
from yolo_kd import KDTrainer
args, log, kill_at = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
def record(tr):
    if tr.epoch * 1000 + tr._kd_i == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    if tr._kd_i == 0:
        with open(log, "a") as f:
            f.write(json.dumps([tr.epoch, {k: float(v) for k, v in tr.loss_items.items()}]) + "\\n")
    tr._kd_i += 1
def epoch_start(tr):
    tr._kd_i = 0
t = KDTrainer(overrides=args)
t.add_callback("on_train_epoch_start", epoch_start)
t.add_callback("on_train_batch_end", record)
t.train()
"""
NO_AUG = {"batch": 12, "nbs": 12, "warmup_epochs": 0, "optimizer": "SGD", "lr0": 0.05, "deterministic": True,
          "val": False, "hsv_h": 0, "hsv_s": 0, "hsv_v": 0, "fliplr": 0, "translate": 0, "scale": 0,
          "mosaic": 0}  # fmt: skip


def _run(args: dict, log: Path, kill_at: int = -1) -> int:
    cmd = [sys.executable, "-c", RUN, json.dumps(args), str(log), json.dumps(kill_at)]
    r = subprocess.run(cmd, env={**os.environ, "YOLO_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    if r.returncode not in (0, -signal.SIGKILL):
        print(r.stderr[-3000:])
    return r.returncode


def _first_steps(log: Path) -> dict[int, dict[str, float]]:
    return {e: v for e, v in (json.loads(line) for line in log.read_text().splitlines())}


def test_sigkill_mid_epoch_then_resume_continues(train_args, tmp_path):
    """Kill -9 during epoch 2 (after its optimizer step, before its save), resume from last.pt: the first resumed
    step's KD and detection losses equal the uninterrupted run's at that step (same teacher, method, adapters,
    optimizer, schedule position). Ultralytics resumes from the EMA, stored in FP16, hence a 1 % tolerance; one
    optimizer step moves the losses by far more than that, so a reset student or adapter would show."""
    base = {**train_args, **NO_AUG, "epochs": 3, "method": "mimic+cwd"}
    full, killed = tmp_path / "full.jsonl", tmp_path / "killed.jsonl"
    assert _run({**base, "name": "full"}, full) == 0
    assert _run({**base, "name": "killed"}, killed, kill_at=1000) == -signal.SIGKILL  # epoch 2
    last = Path(base["project"]) / "killed" / "weights" / "last.pt"
    ckpt = torch.load(last, weights_only=False)  # not truncated, and from the end of epoch 1
    assert ckpt["epoch"] == 0 and ckpt["train_args"]["method"] == "mimic+cwd"
    assert _run({"resume": str(last), "teacher": base["teacher"]}, killed) == 0
    a, b = _first_steps(full), _first_steps(killed)
    assert sorted(a) == [0, 1, 2] and sorted(b) == [0, 1, 2]  # the resumed run re-did epoch 2 and finished
    assert a[1]["cwd"] != pytest.approx(a[0]["cwd"], rel=0.05), "too small a step to tell restored from reset"
    assert b[1] == pytest.approx(a[1], rel=1e-2, abs=1e-6), "first resumed step differs from the uninterrupted run"
    assert b[2] == pytest.approx(a[2], rel=1e-2, abs=1e-6) and a[1]["mimic"] > 0 and a[1]["cwd"] > 0


WRITER = """
import sys
from yolo_kd.checkpoint.atomic import AtomicPath
AtomicPath(sys.argv[1]).write_bytes(b"x" * (400 << 20))
"""


def test_checkpoint_write_killed_midway_leaves_old_file(tmp_path):
    """A process killed while writing a checkpoint through AtomicPath leaves the previous last.pt intact."""
    last = tmp_path / "last.pt"
    last.write_bytes(b"previous checkpoint")
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(last)])
    tmp = tmp_path / ".last.pt.tmp"
    deadline = time.time() + 60
    while not (tmp.exists() and tmp.stat().st_size > 0) and p.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert last.read_bytes() == b"previous checkpoint"


def test_failed_checkpoint_write_removes_its_temporary_file(tmp_path, monkeypatch):
    """Issue 37 item 6: a write that fails (a full disk: ENOSPC at fsync) raises, leaves the previous last.pt as it
    was and no .last.pt.tmp behind."""
    import errno

    from yolo_kd.checkpoint import atomic

    last = tmp_path / "last.pt"
    last.write_bytes(b"previous checkpoint")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        atomic.AtomicPath(last).write_bytes(b"new checkpoint")
    assert last.read_bytes() == b"previous checkpoint" and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_safe_load_refuses_code_and_loads_plain_checkpoints(tmp_path, teacher_pt):
    """safe_load reads a stock checkpoint, and refuses one that would run code, naming the offending global."""
    from yolo_kd.checkpoint.safe_load import safe_model
    from yolo_kd.errors import KDError

    model = safe_model(teacher_pt)
    assert type(model).__name__ == "DetectionModel" and model.model[-1].nc == 3
    evil = tmp_path / "evil.pt"
    ckpt = torch.load(teacher_pt, weights_only=False)
    ckpt["train_args"] = {"x": _Evil()}
    torch.save(ckpt, evil)
    with pytest.raises(KDError, match=r"refused by safe_load: it references .*system"):
        safe_model(evil)


def test_kd_train_with_safe_load(train_args, make_ckpt, tmp_path):
    """safe_load=True trains with teacher and student .pt read through the allowlist; a code-carrying teacher is
    refused before any run directory is made."""
    from yolo_kd import KDTrainer
    from yolo_kd.errors import KDError

    student = make_ckpt(tmp_path / "student.pt", cfg="yolov8n.yaml", nc=3, seed=1)
    t = KDTrainer(overrides={**train_args, "student": str(student), "safe_load": True, "method": "mimic"})
    t.train()
    assert t.args.safe_load and Path(t.best).exists()
    evil = tmp_path / "evil.pt"
    ckpt = torch.load(train_args["teacher"], weights_only=False)
    ckpt["note"] = _Evil()
    torch.save(ckpt, evil)
    with pytest.raises(KDError, match="refused by safe_load"):
        KDTrainer(overrides={**train_args, "teacher": str(evil), "safe_load": True, "name": "evil"})
    assert not (Path(train_args["project"]) / "evil").exists()


def test_nan_rollback_restores_method_modules(train_args):
    """After Ultralytics' NaN roll-back to last.pt, the method's adapters are the checkpoint's, not the NaN ones."""
    from yolo_kd import KDTrainer

    t2 = KDTrainer(overrides={**train_args, "epochs": 3, "method": "mimic", "name": "nan"})
    t2._setup_train()
    t2.epoch, t2.best_fitness, t2.fitness, t2.metrics = 0, 0.0, 0.0, {}
    t2.save_model()  # a mid-training last.pt, as at the end of epoch 1
    state = torch.load(t2.last, weights_only=False)["ema"].yolo_kd["state"]
    saved = {k[8:]: v for k, v in state.items() if k.startswith("kd_loss.")}
    assert saved and all(torch.isfinite(v).all() for v in saved.values())
    for p in t2.model.kd_loss.parameters():
        p.data.fill_(float("nan"))
    t2.loss = torch.tensor(float("nan"))
    assert t2._handle_nan_recovery(epoch=1)
    now = t2.model.kd_loss.state_dict()
    assert all(torch.equal(now[k], v) for k, v in saved.items())


@pytest.mark.parametrize("cfg", ["yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml"])
def test_safe_load_accepts_every_supported_family(tmp_path, cfg):
    """A checkpoint of each family (v8, 11 with its C3k blocks, 26 with its end-to-end head) passes the allowlist."""
    from tests.conftest import save_checkpoint
    from yolo_kd.checkpoint.safe_load import safe_model

    model = safe_model(save_checkpoint(tmp_path / "m.pt", cfg=cfg))
    assert type(model.model[-1]).__name__ in {"Detect", "v10Detect"} and not model.training


def test_epoch_whose_checkpoint_fails_leaves_no_results_row(train_args, monkeypatch):
    """Issue 37 item 6: the disk fills during epoch 2's save: the run stops with the OSError, last.pt is epoch 1's and
    results.csv lists epoch 1 only (a resume re-runs epoch 2 without a duplicate row)."""
    import errno

    from yolo_kd import KDTrainer
    from yolo_kd.checkpoint import atomic

    real = atomic.os.fsync
    t = KDTrainer(overrides={**train_args, "epochs": 3, "method": "mimic", "val": False})

    def fill_disk(tr):
        if tr.epoch == 1:
            monkeypatch.setattr(atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))

    t.add_callback("on_train_epoch_end", fill_disk)
    with pytest.raises(OSError, match="full"):
        t.train()
    monkeypatch.setattr(atomic.os, "fsync", real)
    rows = (t.save_dir / "results.csv").read_text().splitlines()
    assert [r.split(",")[0].strip() for r in rows[1:]] == ["1"]
    assert torch.load(t.last, weights_only=False)["epoch"] == 0
