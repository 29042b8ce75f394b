"""CLI parsing, aliases, flat method args and `yolo-kd methods`."""

from __future__ import annotations

from pathlib import Path

import pytest

from yolo_kd.callbacks import kd_scale
from yolo_kd.cfg import KD_DEFAULTS, split_overrides
from yolo_kd.cli import main, parse_kv
from yolo_kd.errors import KDError


def test_parse_kv_yaml_values():
    """Values are parsed like Ultralytics' CLI: numbers, bools, dicts."""
    kv = parse_kv(["epochs=3", "amp=False", "kd_args={mimic: {weight: 2}}", "name=run1"])
    assert kv == {"epochs": 3, "amp": False, "kd_args": {"mimic": {"weight": 2}}, "name": "run1"}
    assert parse_kv(["title=R1 helmet: paired gains"]) == {"title": "R1 helmet: paired gains"}  # text, not a mapping
    with pytest.raises(KDError, match="not key=value"):
        parse_kv(["epochs"])


def test_split_overrides_aliases_and_flat_args():
    """student -> model, teacher -> KD teacher, <method>_<param> merges into kd_args."""
    ul, kd = split_overrides(
        {
            "student": "yolov8n.yaml",
            "teacher": "t.pt",
            "epochs": 2,
            "method": "gkd+bmfi",
            "gkd_weight": 3.0,
            "kd_args": {"bmfi": {"alpha": 1e-3}},
        }
    )
    assert ul == {"model": "yolov8n.yaml", "epochs": 2}
    assert kd["teacher"] == "t.pt" and kd["kd_args"] == {"gkd": {"weight": 3.0}, "bmfi": {"alpha": 1e-3}}
    with pytest.raises(KDError, match="not in method"):
        split_overrides({"method": "mimic", "kd_args": {"gkd": {"weight": 1}}})
    with pytest.raises(KDError, match="kd_decay"):
        split_overrides({"kd_decay": "exp"})


def test_crosskd_weight_is_3_for_a_student_that_starts_from_weights():
    """R8's rule: crosskd's weight is 3 for a .pt student unless given, 20 (the class default) for a .yaml one; the
    value goes into kd_args, so the run's args.yaml says it and a resume keeps it; a resume call changes nothing."""
    from yolo_kd.losses.crosskd import CrossKD

    assert CrossKD([2], [2]).cls_weight == 20.0  # the from-scratch default stays in the class
    pt = {"student": "runs/x/yolov8n.pt", "teacher": "t.pt", "method": "crosskd"}
    assert split_overrides(pt)[1]["kd_args"] == {"crosskd": {"weight": 3.0}}
    assert split_overrides({**pt, "method": "crosskd+bckd"})[1]["kd_args"] == {"crosskd": {"weight": 3.0}, "bckd": {}}
    assert split_overrides({**pt, "crosskd_weight": 20})[1]["kd_args"] == {"crosskd": {"weight": 20}}
    assert split_overrides({**pt, "method": "gkd+bmfi"})[1]["kd_args"] == {"gkd": {}, "bmfi": {}}
    assert split_overrides({**pt, "student": "yolov8n.yaml"})[1]["kd_args"] == {"crosskd": {}}
    assert split_overrides({"model": "runs/x/weights/last.pt", "resume": True})[1]["kd_args"] == {"crosskd": {}}


def test_default_method_follows_the_task_and_the_student():
    """R14's rule: method= left out, a .pt detection student gets builtin at weight 12; a .yaml one crosskd at the class
    default; a .pt seg student maskkd at its own default with a seg teacher (T11), a .pt pose student kptkd with a pose
    teacher (T13), both crosskd at 3 with a detection one; obb students cwd. Given options and methods win; settings
    for a method the default does not include are refused in one line naming the default; a resume picks nothing;
    with unlabeled= a .pt student keeps crosskd at 3 (R7)."""
    pt = {"student": "runs/x/yolov8n.pt", "teacher": "t.pt"}
    kd = split_overrides(pt)[1]
    assert (kd["method"], kd["kd_args"]) == ("builtin", {"builtin": {"weight": 12.0}})
    assert split_overrides({**pt, "builtin_weight": 8})[1]["kd_args"] == {"builtin": {"weight": 8}}
    assert split_overrides({**pt, "kd_args": {"builtin": {"weight": 7}}})[1]["kd_args"] == {"builtin": {"weight": 7}}
    assert split_overrides({**pt, "method": "builtin"})[1]["kd_args"] == {"builtin": {}}  # by name: Ultralytics' 6
    yaml = split_overrides({**pt, "student": "yolov8n.yaml"})[1]
    assert (yaml["method"], yaml["kd_args"]) == ("crosskd", {"crosskd": {}})
    seg = split_overrides(pt, "segment")[1]  # the teacher's task not yet known: read as the student's
    assert (seg["method"], seg["kd_args"]) == ("maskkd", {"maskkd": {}})
    assert split_overrides(pt, "segment", "segment")[1]["method"] == "maskkd"
    assert split_overrides({**pt, "student": "yolov8n-seg.yaml"}, "segment")[1]["method"] == "crosskd"
    for teacher in (None, "pose"):
        kd = split_overrides(pt, "pose", teacher)[1]
        assert (kd["method"], kd["kd_args"]) == ("kptkd", {"kptkd": {}}), teacher
    assert split_overrides({**pt, "kptkd_pose_weight": 6}, "pose", "pose")[1]["kd_args"] == {
        "kptkd": {"pose_weight": 6}
    }
    assert split_overrides({**pt, "student": "yolov8n-pose.yaml"}, "pose", "pose")[1]["method"] == "crosskd"
    for task in ("segment", "pose"):
        kd = split_overrides(pt, task, "detect")[1]
        assert (kd["method"], kd["kd_args"]) == ("crosskd", {"crosskd": {"weight": 3.0}}), task
    for task, key, setting in (("segment", "maskkd", "maskkd_weight"), ("pose", "kptkd", "kptkd_kobj_weight")):
        with pytest.raises(KDError, match=rf"^{key} settings given without method=; the default for this student is "
                                          rf"crosskd: add method={key} or drop them$"):  # fmt: skip
            split_overrides({**pt, setting: 5}, task, "detect")
    assert split_overrides(pt, "obb")[1]["method"] == "cwd"
    pool = split_overrides({**pt, "unlabeled": "raw/"})[1]  # R7's measured default with a pool
    assert (pool["method"], pool["kd_args"]) == ("crosskd", {"crosskd": {"weight": 3.0}})
    assert split_overrides({"model": "runs/x/weights/last.pt", "resume": True})[1]["method"] == KD_DEFAULTS["method"]
    with pytest.raises(KDError, match=r"^crosskd settings given without method=; the default for this student is "
                                      r"builtin: add method=crosskd or drop them$"):  # fmt: skip
        split_overrides({**pt, "crosskd_weight": 5})


def test_kd_schedule_values():
    """constant 1; linear 1 -> final; cosine 1 -> final through the midpoint average."""
    assert kd_scale(0.7, "constant", 0.1) == 1.0
    assert kd_scale(0.5, "linear", 0.0) == pytest.approx(0.5) and kd_scale(1.0, "linear", 0.2) == pytest.approx(0.2)
    assert kd_scale(0.0, "cosine", 0.1) == pytest.approx(1.0) and kd_scale(0.5, "cosine", 0.0) == pytest.approx(0.5)


def test_methods_command_lists_every_method(capsys):
    """`yolo-kd methods` prints each key with its paper line and parameters."""
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for key in ("mimic", "builtin", "kd", "ld", "gkd", "bmfi"):
        assert f"\n{key}" in f"\n{out}"
    assert "gkd_weight=" in out and "arXiv 2303.04240" in out
    marked = [ln.split()[0] for ln in out.splitlines() if ln.endswith("(the default method)")]
    assert marked == [KD_DEFAULTS["method"]]  # the default named once, from cfg, and it is a registered method


def test_user_plugin_method_from_the_readme(tmp_path, monkeypatch):
    """The README's plugin example, as printed, registers a method usable by key that trains the student only."""
    import re

    from tests.losses.inputs import S_CH, T_CH, make_inputs
    from yolo_kd.losses import LOSSES, build_loss

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    (tmp_path / "my_at.py").write_text(re.search(r"```python\n(# my_at\.py.*?)```", readme, re.S).group(1))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        _, kd = split_overrides({"plugins": "my_at", "method": "myat", "myat_weight": 2})
        assert kd["kd_args"] == {"myat": {"weight": 2}}
        loss, x = build_loss("myat", kd["kd_args"], S_CH, T_CH), make_inputs()
        out = loss.check(loss(x))
        out["myat"].backward()
        assert list(out) == ["myat"] and out["myat"] > 0 and x.s_feats[0].grad is not None
    finally:
        LOSSES.pop("myat", None)


def test_train_teacher_runs_plain_ultralytics(tiny_data, tmp_path, capsys):
    """`yolo-kd train-teacher` fine-tunes with Ultralytics and prints the next command; missing args are an error."""
    from yolo_kd.cli import main

    args = ["train-teacher", "model=yolov8n.yaml", f"data={tiny_data}", "epochs=1", "imgsz=64", "batch=4",
            "workers=0", "device=cpu", "plots=False", f"project={tmp_path}"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "teacher ready:" in out and "next: yolo-kd train teacher=" in out
    assert (tmp_path / "teacher" / "weights" / "best.pt").exists()
    assert main(["train-teacher", "model=yolov8n.yaml"]) == 2


def test_ctrl_c_prints_the_resume_command(train_args, monkeypatch, capsys, tmp_path):
    """Ctrl-C during `yolo-kd train` exits 130 with the resume command of the run, not a traceback."""
    from yolo_kd.trainer import KDTrainer

    def interrupted(self):
        self.last.parent.mkdir(parents=True, exist_ok=True)
        Path(self.last).write_bytes(b"x")
        raise KeyboardInterrupt

    monkeypatch.setattr(KDTrainer, "train", interrupted)
    argv = ["train", *(f"{k}={v}" for k, v in train_args.items())]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 130 and "resume with: yolo-kd train resume=True model=" in capsys.readouterr().err


def test_plugin_from_a_py_path_leaves_sys_path_alone(tmp_path):
    """plugins=path/x.py loads that file as module x without adding its folder to sys.path; a bad path is one line."""
    import sys

    from yolo_kd.losses import LOSSES

    (tmp_path / "my_path_plugin.py").write_text(
        "from yolo_kd.losses import DistillLoss, register\n"
        "@register('pathplug')\nclass P(DistillLoss):\n    '''Path plugin.'''\n    names = ('pathplug',)\n"
        "    def forward(self, x):\n        return {'pathplug': sum(s.mean() for s in x.s_feats)}\n"
    )
    before = list(sys.path)
    try:
        split_overrides({"plugins": str(tmp_path / "my_path_plugin.py"), "method": "pathplug"})
        assert "pathplug" in LOSSES and sys.path == before and "my_path_plugin" in sys.modules
    finally:
        LOSSES.pop("pathplug", None)
        sys.modules.pop("my_path_plugin", None)
    with pytest.raises(KDError, match="could not be imported"):
        split_overrides({"plugins": str(tmp_path / "missing.py"), "method": "mimic"})
