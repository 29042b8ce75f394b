"""KDTrainer end to end at a tiny size: loss names, frozen teacher, plain student checkpoints, resume, DDP re-init."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from yolo_kd.trainer import KDTrainer, ultralytics_args


class StopAfterFirstEpoch(Exception):
    """Raised from a callback to simulate a run killed after epoch 1 was saved."""


def test_one_epoch_kd_run(train_args, monkeypatch):
    """gkd+bmfi trains 1 epoch: KD names logged, teacher weights and BN stats unchanged, best.pt a plain model; the
    teacher file is read once (by the pre-flight check), not again when the KD model is built."""
    import ultralytics.nn.distill_model as dm
    from ultralytics.nn.tasks import load_checkpoint

    reads = []
    monkeypatch.setattr(dm, "load_checkpoint", lambda w, *a, **k: reads.append(w) or load_checkpoint(w, *a, **k))
    trainer = KDTrainer(overrides={**train_args, "method": "gkd+bmfi+kd", "plots": True})
    teacher_before = {k: v.clone() for k, v in load_checkpoint(train_args["teacher"])[0].state_dict().items()}
    trainer.train()
    from ultralytics.utils import LOGGER

    assert reads == []  # KDModel got check_teacher's model
    assert (trainer.save_dir / "kd_terms.png").exists()
    assert trainer.freeze_filter.count > 100 or not LOGGER.isEnabledFor(20)  # folded into one line (when INFO shows)
    assert LOGGER.filters.count(trainer.freeze_filter) == 1
    assert trainer.loss_names[:3] == ("box_loss", "cls_loss", "dfl_loss")
    assert {"gkd", "bmfi_fg", "bmfi_att", "kd"} <= set(trainer.loss_names)
    header = (Path(trainer.save_dir) / "results.csv").read_text().splitlines()[0]
    assert "train/gkd" in header and "val/gkd" not in header and "val/box_loss" in header  # no always-0 val columns
    teacher = trainer.model.teacher_model
    assert not teacher.training and all(not p.requires_grad for p in teacher.parameters())
    for k, v in teacher.state_dict().items():  # includes BN running_mean / running_var
        assert torch.equal(v.float().cpu(), teacher_before[k].float()), k
    assert all(p.requires_grad for p in trainer.model.kd_loss.parameters())  # adapters are trained
    from yolo_kd.teacher_precision import resolve

    auto = resolve("auto", torch.device("cpu"))  # the default: bf16 where the CPU has it, checked on batch 1
    assert trainer.model.teacher_forward.checked and trainer.model.teacher_dtype in {auto, None}
    ckpt = torch.load(trainer.best, weights_only=False)
    assert type(ckpt["model"]).__name__ == "DetectionModel"
    assert "method" not in ckpt["train_args"]


def test_self_distillation_with_seed_methods(train_args, make_ckpt, tmp_path):
    """AID/RM/PFI/SKD/TAR train together through KDTrainer with a teacher of the student's own architecture."""
    teacher = make_ckpt(tmp_path / "v8n.pt", "yolov8n.yaml")
    trainer = KDTrainer(overrides={**train_args, "teacher": str(teacher), "method": "aid+rm+pfi+skd+tar"})
    trainer.train()
    assert {"aid_feat", "aid_logit", "rm", "pfi", "skd_am", "skd_nl", "tar_feat", "tar_cls"} <= set(trainer.loss_names)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in trainer.tloss.values())
    assert type(torch.load(trainer.best, weights_only=False)["model"]).__name__ == "DetectionModel"


def test_student_checkpoint_is_plain_ultralytics(train_args, tmp_path):
    """best.pt loads, validates, predicts and exports to ONNX in a process that never imports yolo_kd."""
    trainer = KDTrainer(overrides={**train_args, "method": "mimic"})
    trainer.train()
    code = f"""
import sys
from ultralytics import YOLO
m = YOLO(r"{trainer.best}")
m.val(data=r"{train_args["data"]}", imgsz=64, batch=4, device="cpu", plots=False, workers=0)
m.predict(torch_img := __import__("torch").zeros(1, 3, 64, 64), verbose=False)
out = m.export(format="onnx", imgsz=64, simplify=False)
assert "yolo_kd" not in sys.modules, "yolo_kd was imported"
print("OK", out)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-2000:]


def test_resume_restores_method_modules(train_args):
    """A run stopped after epoch 1 resumes with the same method and the adapters / generators / GcBlocks it had
    saved, all of them in the optimizer."""
    method = "mimic+cwd+mgd+fgd+pkd"
    args = {**train_args, "epochs": 2, "method": method, "kd_decay": "linear", "name": "resume"}
    trainer = KDTrainer(overrides=args)

    def stop(tr):
        raise StopAfterFirstEpoch

    trainer.add_callback("on_model_save", stop)
    with pytest.raises(StopAfterFirstEpoch):
        trainer.train()
    ema = torch.load(trainer.last, weights_only=False)["ema"]
    assert type(ema).__name__ == "DetectionModel"  # a stock student; the method's state rides along as tensors
    saved = {k[8:]: v for k, v in ema.yolo_kd["state"].items() if k.startswith("kd_loss.")}
    resumed = KDTrainer(overrides={"resume": str(trainer.last)})
    assert resumed.args.method == method and resumed.args.kd_decay == "linear"
    seen = {}
    resumed.add_callback("on_train_start", lambda tr: seen.update(tr.model.kd_loss.state_dict()))
    resumed.train()
    assert seen and all(torch.allclose(seen[k].float(), v.float(), atol=1e-3) for k, v in saved.items())
    assert resumed.start_epoch == 1
    optimised = {id(p) for g in resumed.optimizer.param_groups for p in g["params"]}
    assert {"parts.mgd.generator.0.0.weight", "parts.fgd.gc_s.0.add.1.weight"} <= set(saved)
    assert all(id(p) in optimised for p in resumed.model.kd_loss.parameters())


def test_ddp_style_rebuild_keeps_kd_settings(train_args):
    """DDP workers rebuild the trainer as cls(cfg=DEFAULT_CFG_DICT, overrides=vars(args)); KD keys survive."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    a = KDTrainer(overrides={**train_args, "method": "mimic+kd", "mimic_weight": 3.0})
    b = KDTrainer(cfg=DEFAULT_CFG_DICT, overrides=vars(a.args))
    assert b.args.method == "mimic+kd" and b.args.kd_args == {"mimic": {"weight": 3.0}, "kd": {}}
    assert b.args.distill_model == a.args.distill_model
    from ultralytics.cfg import get_cfg

    clean = ultralytics_args(b.args)
    assert not hasattr(clean, "method") and not hasattr(clean, "kd_args") and b.args.method == "mimic+kd"
    get_cfg(overrides=vars(clean))  # what the validator does: must not raise on unknown keys
    with pytest.raises(SyntaxError):
        get_cfg(overrides=vars(b.args))  # contract: Ultralytics rejects our keys, hence the stripping


def test_final_checkpoint_keeps_method_modules_for_a_warm_start(train_args):
    """best.pt keeps the trained adapters under 'yolo_kd' (stock YOLO still loads it); a new run with the same
    method and student=best.pt starts its adapters from them, another method starts fresh."""
    from ultralytics import YOLO

    from yolo_kd import KDTrainer

    t = KDTrainer(overrides={**train_args, "method": "mimic"})
    t.train()
    ckpt = torch.load(t.best, weights_only=False)
    saved = ckpt["yolo_kd"]["kd_modules"]
    assert ckpt["yolo_kd"]["method"] == "mimic" and saved and type(ckpt["model"]).__name__ == "DetectionModel"
    assert YOLO(str(t.best)).model.model[-1].nc == 3
    warm = KDTrainer(overrides={**train_args, "student": str(t.best), "method": "mimic", "name": "warm"})
    warm._setup_train()
    now = warm.model.kd_loss.state_dict()
    assert all(torch.equal(now[k], v.float()) for k, v in saved.items())
    fresh = KDTrainer(overrides={**train_args, "student": str(t.best), "method": "cwd+mimic", "name": "fresh"})
    fresh._setup_train()
    mimic = fresh.model.kd_loss.parts["mimic"].state_dict()
    assert not torch.equal(mimic["adapt.0.weight"], saved["adapt.0.weight"].float())


def test_resume_continues_exactly_the_named_run(train_args, teacher_pt, monkeypatch):
    """`resume=True model=A/last.pt` continues A even when B is newer (issue 19); a bare resume=True, a missing file and
    a checkpoint that is not a KD run are refused in one line before anything is written."""
    from yolo_kd.errors import KDError

    runs = {}
    for name, method in (("A", "mimic"), ("B", "kd")):
        tr = KDTrainer(overrides={**train_args, "epochs": 2, "method": method, "name": name})
        tr.add_callback("on_model_save", lambda t: (_ for _ in ()).throw(StopAfterFirstEpoch()))
        with pytest.raises(StopAfterFirstEpoch):
            tr.train()
        runs[name] = tr
    monkeypatch.chdir(train_args["project"])  # B's last.pt is the newest file under the working directory
    a = KDTrainer(overrides={"resume": True, "model": str(runs["A"].last)})
    assert a.args.method == "mimic" and a.save_dir == runs["A"].save_dir
    before = sorted(p.name for p in runs["A"].save_dir.parent.iterdir())
    for bad, msg in (({"resume": True}, "never guesses"), ({"resume": True, "model": "nope.pt"}, "not found"),
                     ({"resume": str(teacher_pt)}, "is not a yolo-kd run")):  # fmt: skip
        with pytest.raises(KDError, match=msg):
            KDTrainer(overrides=bad)
    assert sorted(p.name for p in runs["A"].save_dir.parent.iterdir()) == before


def test_progress_header_keeps_long_term_names_apart(train_args):
    """Term names over 10 characters are shortened in the progress header, so every column stays separate."""
    trainer = KDTrainer(overrides=train_args)
    trainer.loss_names = ("box_loss", "cls_loss", "dfl_loss", "crosskd_cls", "crosskd_box", "pseudo", "pl_share")
    cols = trainer.progress_string().split()
    assert len(cols) == 4 + 7 and "crossk.cls" in cols and "crossk.box" in cols and "pl_share" in cols
