"""Segment, pose and obb students end to end: the trainer the student's task picks, stock checkpoints, bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from yolo_kd.cli import main

SETS = {"segment": "coco8-seg", "pose": "coco8-pose", "obb": "dota8"}
STUDENT = {"segment": "yolov8n-seg.yaml", "pose": "yolov8n-pose.yaml", "obb": "yolov8n-obb.yaml"}
pytestmark = pytest.mark.train


def save(path: Path, task: str, data: Path, **extra) -> Path:
    """A random-weight ``task`` model for ``data`` saved in Ultralytics' checkpoint layout."""
    from ultralytics.nn import tasks as t

    d = yaml.safe_load(data.read_text())
    kind = {"detect": t.DetectionModel, "segment": t.SegmentationModel, "pose": t.PoseModel, "obb": t.OBBModel}[task]
    cfg = {"detect": "yolov8n.yaml"}.get(task, STUDENT.get(task))
    torch.manual_seed(0)
    m = kind(cfg, nc=len(d["names"]), verbose=False, **extra)
    m.names = d["names"]
    torch.save({"model": m.half(), "train_args": {}, "version": "8.4.190"}, path)
    return path


@pytest.fixture(scope="module")
def sets(shared_assets, tmp_path_factory) -> dict[str, Path]:
    """coco8-seg, coco8-pose and dota8 copied to a temp folder (Ultralytics writes label caches)."""
    root = tmp_path_factory.mktemp("sets")
    return {
        task: Path(shutil.copytree(shared_assets / "datasets" / n, root / n)) / "data.yaml" for task, n in SETS.items()
    }


def argv(tmp_path: Path, **kv) -> list[str]:
    """``yolo-kd train`` arguments for one tiny epoch in ``tmp_path/proj``."""
    base = {"epochs": 1, "imgsz": 64, "batch": 4, "workers": 0, "device": "cpu", "plots": False, "amp": False,
            "project": str(tmp_path / "proj"), "name": "run", "seed": 0}  # fmt: skip
    return ["train", *(f"{k}={v}" for k, v in {**base, **kv}.items())]


@pytest.mark.parametrize("task", ["segment", "pose", "obb"])
def test_yolo_kd_train_picks_the_task_and_writes_a_stock_checkpoint(task, sets, tmp_path):
    """``yolo-kd train student=yolov8n-<task>.yaml`` trains that task (with its mask / keypoint term); stock
    Ultralytics, without yolo_kd, loads best.pt, validates it with the task's metrics (mask / pose mAP), predicts."""
    teacher = save(tmp_path / "t.pt", task, sets[task], **({"data_kpt_shape": (17, 3)} if task == "pose" else {}))
    method = {"segment": "crosskd+maskkd", "pose": "crosskd+kptkd", "obb": "mimic"}[task]
    assert main(argv(tmp_path, student=STUDENT[task], teacher=teacher, data=sets[task], method=method)) == 0
    best = tmp_path / "proj" / "run" / "weights" / "best.pt"
    metric = {"segment": "seg.map", "pose": "pose.map", "obb": "box.map"}[task]
    code = f"""
import sys
from ultralytics import YOLO
m = YOLO(r"{best}")
assert m.task == "{task}", m.task
r = m.val(data=r"{sets[task]}", imgsz=64, batch=4, device="cpu", plots=False, workers=0)
print("metric", r.{metric})
m.predict(__import__("torch").zeros(1, 3, 64, 64), verbose=False)
assert "yolo_kd" not in sys.modules, "yolo_kd was imported"
print("OK")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-2000:]


def test_bad_task_pairs_get_one_line_before_any_folder(sets, shared_assets, tmp_path, capsys):
    """Issue 35 item 5: a pose set without kpt_shape, a teacher with another keypoint layout, an obb teacher for a
    seg student, a box-branch method for an obb student, a detect teacher for an obb student: one line, exit 2."""
    det = shared_assets / "weights" / "yolov8n.pt"
    no_kpt = tmp_path / "nokpt.yaml"
    d = yaml.safe_load(sets["pose"].read_text())
    d.pop("kpt_shape")
    no_kpt.write_text(yaml.safe_dump({**d, "path": str(sets["pose"].parent)}))
    pose5 = save(tmp_path / "pose5.pt", "pose", sets["pose"], data_kpt_shape=(5, 3))
    obb_t = save(tmp_path / "obb.pt", "obb", sets["obb"])
    cases = [
        ({"student": STUDENT["pose"], "teacher": det, "data": no_kpt}, "has no kpt_shape"),
        ({"student": STUDENT["pose"], "teacher": pose5, "data": sets["pose"]}, "teacher has keypoints [5, 3]"),
        (
            {"student": STUDENT["segment"], "teacher": obb_t, "data": sets["segment"]},
            "takes a segment or detect teacher",
        ),
        ({"student": STUDENT["obb"], "teacher": obb_t, "data": sets["obb"], "method": "crosskd"}, "rotates"),
        ({"student": STUDENT["obb"], "teacher": det, "data": sets["obb"], "method": "mimic"}, "takes an obb teacher"),
    ]
    for kv, msg in cases:
        assert main(argv(tmp_path, **kv)) == 2, kv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], (kv, err)
    assert not (tmp_path / "proj").exists()


def test_the_detection_trainer_names_the_task_trainer(sets, shared_assets, tmp_path):
    """The Python API: KDTrainer given a seg student says which trainer takes it, before any folder."""
    from yolo_kd.errors import KDError
    from yolo_kd.trainer import KDTrainer

    over = {"student": STUDENT["segment"], "teacher": str(shared_assets / "weights" / "yolov8n.pt"),
            "data": str(sets["segment"]), "project": str(tmp_path / "proj")}  # fmt: skip
    with pytest.raises(KDError, match="train it with KDSegmentationTrainer"):
        KDTrainer(overrides=over)
    assert not (tmp_path / "proj").exists()


@pytest.mark.parametrize(
    ("task", "method", "terms"),
    [("segment", "crosskd+maskkd", {"crosskd_cls", "crosskd_box", "maskkd"}),
     ("pose", "crosskd+kptkd", {"crosskd_cls", "crosskd_box", "kptkd_pose", "kptkd_kobj"}),
     ("obb", "cwd", {"cwd"})],
)  # fmt: skip
def test_inspect_takes_every_task(task, method, terms, sets, tmp_path):
    """``yolo-kd inspect`` builds the student's task trainer: every term of a task method gets a gradient share, and the
    teacher is scored on the task's own metric (mask / pose mAP) with its boxes beside it."""
    from yolo_kd.tools.inspect import run_inspect

    teacher = save(tmp_path / "t.pt", task, sets[task])
    ckpt = torch.load(teacher, weights_only=False)
    torch.save({**ckpt, "train_args": {"task": task}}, teacher)  # as Ultralytics saves it: stock YOLO() reads the task
    rep = run_inspect(teacher=str(teacher), data=str(sets[task]), student=STUDENT[task], method=method, batches=1,
                      imgsz=64, batch=4, out=str(tmp_path), device="cpu")  # fmt: skip
    assert set(rep["shares"]) == terms and all(v >= 0 for v in rep["shares"].values())
    assert rep["strength"]["metric"] == {"segment": "mask ", "pose": "pose "}.get(task, "")
    assert {"teacher", "teacher_box"} <= set(rep["strength"])
    assert ("(box: teacher" in rep["text"]) == (task != "obb")


def test_inspect_without_method_inspects_what_train_would_pick(sets, tmp_path):
    """method= left out, ``inspect`` looks at the method ``train`` picks: kptkd for a .pt pose student of a pose
    teacher (T13), and says that it picked it."""
    from yolo_kd.tools.inspect import run_inspect

    student, teacher = save(tmp_path / "s.pt", "pose", sets["pose"]), save(tmp_path / "t.pt", "pose", sets["pose"])
    rep = run_inspect(teacher=str(teacher), data=str(sets["pose"]), student=str(student), batches=1, imgsz=64,
                      batch=4, out=str(tmp_path), device="cpu")  # fmt: skip
    assert set(rep["shares"]) == {"kptkd_pose", "kptkd_kobj"}
    assert rep["text"].startswith("yolo-kd inspect: method=kptkd (picked for this student: method= left out)\n")


def test_an_obb_student_without_method_gets_cwd(sets, tmp_path):
    """crosskd (the default) cannot take an obb student: without method= it gets cwd (T4), args.yaml records it and it
    trains; method= still chooses, and every other task keeps crosskd."""
    from yolo_kd.cfg import KD_DEFAULTS
    from yolo_kd.tasks import KDOBBTrainer, trainer_for

    teacher = save(tmp_path / "t.pt", "obb", sets["obb"])
    base = {"student": STUDENT["obb"], "teacher": str(teacher), "data": str(sets["obb"]), "epochs": 1, "imgsz": 64,
            "batch": 4, "workers": 0, "device": "cpu", "plots": False, "amp": False, "val": False,
            "project": str(tmp_path / "proj"), "exist_ok": True}  # fmt: skip
    t = trainer_for({**base, "name": "auto"})
    assert isinstance(t, KDOBBTrainer) and t.args.method == "cwd" and t.kd_spec.name == "cwd"
    assert "method: cwd" in (t.save_dir / "args.yaml").read_text()
    t.train()
    assert float(t.tloss["cwd"]) > 0  # the cwd term trained the obb student
    assert trainer_for({**base, "name": "given", "method": "mimic"}).args.method == "mimic"
    assert KD_DEFAULTS["method"] == "crosskd"


@pytest.mark.parametrize("task, key", [("segment", "maskkd"), ("pose", "kptkd")])
def test_a_student_from_weights_gets_its_task_term_from_a_teacher_of_its_task_only(task, key, sets, shared_assets,
                                                                                   tmp_path):  # fmt: skip
    """T11's and T13's defaults: method= left out, a .pt seg (pose) student taught by a teacher of its task trains
    maskkd (kptkd) at its own defaults; taught by a detector (no masks, no keypoints) it keeps crosskd at 3, and crosskd
    settings given without method= are that default's (not refused as if the task term were picked); decided from
    the teacher before any check; args.yaml says so."""
    from yolo_kd.tasks import KDPoseTrainer, KDSegmentationTrainer, trainer_for

    kind = {"segment": KDSegmentationTrainer, "pose": KDPoseTrainer}[task]
    extra = {"data_kpt_shape": (17, 3)} if task == "pose" else {}
    student = save(tmp_path / "s.pt", task, sets[task], **extra)
    det = shared_assets / "weights" / "yolov8n.pt"
    teachers = {"own": (save(tmp_path / "t.pt", task, sets[task], **extra), {}), "det": (det, {}),
                "det-w5": (det, {"crosskd_weight": 5.0})}  # fmt: skip
    picks = {}
    for name, (teacher, given) in teachers.items():
        over = {"student": str(student), "teacher": str(teacher), "data": str(sets[task]), "imgsz": 64,
                "workers": 0, "device": "cpu", "project": str(tmp_path / "proj"), "name": name, **given}  # fmt: skip
        t = trainer_for(over)
        assert isinstance(t, kind)
        picks[name] = t.kd_spec.name, t.kd_spec.args, t.args.method
        assert f"method: {t.args.method}" in (t.save_dir / "args.yaml").read_text()
    assert picks == {
        "own": (key, {key: {}}, key),
        "det": ("crosskd", {"crosskd": {"weight": 3.0}}, "crosskd"),
        "det-w5": ("crosskd", {"crosskd": {"weight": 5.0}}, "crosskd"),
    }


@pytest.mark.parametrize("task", ["segment", "pose", "obb"])
def test_unlabeled_images_train_every_task(task, sets, tmp_path):
    """``unlabeled=`` with a teacher of the student's task: its masks / keypoints / rotated boxes on the unlabeled
    images reach the student's own task loss (pseudo count logged), and the student is still a stock checkpoint.
    A random teacher scores ~1e-5 (Ultralytics' class-bias init), hence the tiny threshold."""
    from ultralytics import YOLO

    from yolo_kd.tasks import trainer_for

    teacher = save(tmp_path / "t.pt", task, sets[task], **({"data_kpt_shape": (17, 3)} if task == "pose" else {}))
    pool = sets[task].parent / "images" / "val"  # images outside the train split
    method = {"segment": "crosskd", "pose": "crosskd", "obb": "cwd"}[task]
    over = {"student": STUDENT[task], "teacher": str(teacher), "data": str(sets[task]), "epochs": 1, "imgsz": 64,
            "batch": 2, "workers": 0, "device": "cpu", "plots": False, "amp": False, "val": False, "method": method,
            "unlabeled": str(pool), "pseudo_conf": 1e-6, "pseudo_max": 5,
            "project": str(tmp_path / "proj")}  # fmt: skip
    t = trainer_for(over)
    t.train()
    assert t.unlabeled is not None and len(t.unlabeled.dataset) == 4
    assert float(t.tloss["pseudo"]) > 0 and 0 < float(t.tloss["pl_share"]) <= 1
    assert YOLO(str(t.best)).task == task


def test_unlabeled_images_need_a_teacher_of_the_task(sets, shared_assets, tmp_path, capsys):
    """A detection teacher has no masks or keypoints to pseudo-label with: one line naming the fix, no run folder."""
    det = shared_assets / "weights" / "yolov8n.pt"
    pool = sets["segment"].parent / "images" / "val"
    kv = {"student": STUDENT["segment"], "teacher": det, "data": sets["segment"], "unlabeled": pool}
    assert main(argv(tmp_path, **kv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a segment teacher: its masks become the pseudo-labels" in err[0], err
    d = yaml.safe_load(sets["segment"].read_text())  # the same pool named by the data yaml's unlabeled: key
    keyed = tmp_path / "keyed.yaml"
    keyed.write_text(yaml.safe_dump({**d, "path": str(sets["segment"].parent), "unlabeled": str(pool)}))
    assert main(argv(tmp_path, **{**{k: v for k, v in kv.items() if k != "unlabeled"}, "data": keyed})) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a segment teacher" in err[0], err
    assert not (tmp_path / "proj").exists()
