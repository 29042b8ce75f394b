"""Issue 37's table: bad input across every command and the Python API gets exit 2 (or KDError) and one line naming
the problem, with nothing written and nothing of an earlier run changed (every file hashed before and after)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from yolo_kd.cli import main

T, D, TMP = "{T}", "{D}", "{TMP}"
CASES = [  # (argv with {T} teacher, {D} data yaml, {TMP} the test folder; what the line says)
    ("train teacher={T} data={D} epochs=abc", "'epochs' must be an int"),
    ("train teacher={T} data={D} imgsz=-1", "imgsz=-1 must be a size in pixels"),
    ("train teacher={T} data={D} fraction=0", "'fraction=0' invalid"),
    ("train teacher={T} data={D} device=0", "asks for CUDA GPU(s)"),
    ("train teacher={T} data={D} optimizer=Adamz", "did you mean Adam?"),
    ("train teacher={T} data={D} student=nosuch.yaml", "'nosuch.yaml' does not exist"),
    ("train teacher={T} data={D} student=nosuch.pt", "student 'nosuch.pt' not found"),
    ("train teacher=nosuch.pt data={D}", "teacher 'nosuch.pt' not found"),
    ("train teacher={T} data=nosuch.yaml", "'nosuch.yaml' does not exist"),
    ("train teacher={T}", "no data given"),
    ("train data={D}", "no teacher given"),
    ("train teacher={T} data={D} method=", "method= is empty"),
    ("train teacher={T} data={D} method=crosskd+crosskd", "lists a method twice"),
    ("train teacher={T} data={D} method=mimik", "Did you mean 'mimic'"),
    ("train teacher={T} data={D} kd_balance=maybe", "kd_balance='maybe' is not one of off, auto"),
    ("train teacher={T} data={D} kd_share=-1", "kd_share=-1 must be a positive number"),
    ("train teacher={T} data={D} kd_teacher_precision=int4", "'int4' is not one of"),
    ("train teacher={T} data={D} kd_decay=exp", "kd_decay='exp' is not one of"),
    ("train teacher={T} data={D} kd_final=abc", "kd_final='abc' is not a number"),
    ("train teacher={T} data={D} unlabeled={TMP}/none", "does not exist; pass unlabeled="),
    ("train teacher={T} data={D} pseudo_max=abc", "pseudo_max='abc' is not an integer"),
    ("train teacher={T} data={D} unlabeled_ratio=-1", "must be > 0"),
    ("train teacher={T} data={D} plugins=nosuchmodule", "plugin 'nosuchmodule' could not be imported"),
    ("train teacher={T} data={D} crosskd_layer=9", "crosskd_layer=9 must be 1 or 2"),
    ("train teacher={T} data={D} crosskd_cls_norm=foo", "crosskd_cls_norm='foo' must be pos"),
    ("train teacher={T} data={D} mimic_weight=heavy method=mimic", "must be a number"),
    ("train teacher={T} data={D} method=mgd mgd_ratio=-5", "mgd's ratio must be >= 0"),
    ("train teacher={T} data={D} method=cwd cwd_norm=3", "must be true or false"),
    ("train teacher={T} data={D} method=gkd gkd_weigth=1", "Did you mean 'gkd_weight'"),
    ("train teacher={T} data={D} kd_args=[1,2]", "kd_args must be a dict"),
    ("train teacher={T} data={D} safe_load=maybe", "safe_load='maybe' must be true or false"),
    ('train teacher={T} data={D} kd_args={{"crosskd":[1]}}', "kd_args['crosskd'] = [1] must be a dict"),
    ("train teacher={T} data={D} epoch=3", "Did you mean 'epochs'"),
    ("train teacher={T} data={D} student=yolov8n-cls.yaml", "is a classify model"),
    ("train teacher={T} data={D} student=yolov8n-seg.yaml", "a segment student needs"),
    ("train teacher={T} data={D} student=yolov8n-pose.yaml", "has no kpt_shape"),
    ("train teacher={T} data={D} method=maskkd", "method 'maskkd' distills segment outputs"),
    ("train epochs", "not key=value"),
    ("train resume=True", "needs the checkpoint to continue"),
    ("train resume={TMP}/nosuch.pt", "resume checkpoint"),
    ("train resume=True model={TMP}/proj/run/weights/last.pt", "not a yolo-kd run"),
    ("train-teacher data={D} method=gkd", "train-teacher needs model="),
    ("fix-bn model={TMP}/nosuch.pt data={D}", "not found"),
    ("fix-bn model={T} data={D} imags=64", "Did you mean 'images'"),
    ("fix-bn model={T} data={D} images=abc", "must be a positive whole number"),
    ("methods format=html", "format=html is not one of text, md"),
    ("methods nosuch=1", "'nosuch' is not a key of `yolo-kd methods`"),
    ("inspect teacher={TMP}/nosuch.pt data={D}", "teacher '"),
    ("inspect teacher={T} data={D} batches=abc", "inspect batches='abc' must be a positive whole number"),
    ("inspect teacher={T}", "inspect needs teacher=T.pt and data=D.yaml"),
    ("convert kitti src={TMP}/nosuch dst={TMP}/out", "no image_2/ and label_2/"),
    ("convert kitti src={TMP} dst={TMP}/out val_frac=0.3", "Did you mean 'val_fraction'"),
    ("convert coco-traffic src={TMP}/nosuch dst={TMP}/out", "no annotations/instances_train2017.json"),
    ("convert pascal src=a dst=b", "usage: yolo-kd convert"),
    ("benchmark kd preset=tpu", "unknown benchmark preset 'tpu'"),
    ("benchmark kd preset=cpu-small seeds=abc", "benchmark kd seeds='abc' must be a whole number"),
    ("benchmark kd preset=cpu-small jobs=0", "jobs=0 is not a count"),
    ("benchmark kd preset=cpu-small methods=nosuch", "unknown method 'nosuch'"),
    ("benchmark kd preset=syn-obb methods=crosskd project={TMP}/b", "which an obb head rotates"),
    ("benchmark kd preset=syn-seg methods=kptkd project={TMP}/b", "method 'kptkd' distills pose outputs"),
    ("benchmark kd preset=cpu-small teacher=nosuch.pt project={TMP}/b", "teacher 'nosuch.pt' not found"),
    ("benchmark cost imgsz=abc", "benchmark cost imgsz='abc' must be a whole number"),
    ("benchmark cost methods=nosuch", "unknown method 'nosuch'"),
    ("benchmark diff folders={TMP}/nope pairs=a:b", "runs.csv not found"),
    ("benchmark diff folders={TMP} pairs=a:b level=2", "give a confidence between 0 and 1"),
    ("benchmark merge out={TMP}/m", "benchmark merge needs out=DIR and folders="),
    ("benchmark pick ref=x", "benchmark pick needs ref=FOLDER/METHOD"),
    ("benchmark edge model=x.pt", "needs model=student.pt and data="),
    ("benchmark nosuch", "usage: yolo-kd benchmark"),
    ("export model={T} format=tflite", "format='tflite' is not supported here"),
    ("export model={TMP}/missing.pt", "not found"),
    ("predict model={TMP} source={TMP}/nosuch.jpg", "no OpenVINO .xml model"),
    ("predict model={TMP}", "predict needs model="),
    ("demo fast=maybe", "demo fast='maybe' must be True or False"),
    ("demo nosuch=1", "'nosuch' is not a key of `yolo-kd demo`"),
    ("nosuchcommand", "unknown command 'nosuchcommand'"),
]


def tree(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (and the folders, as empty entries): what a case must leave unchanged."""
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_data, teacher_pt) -> dict[str, str]:
    """A test folder with an earlier, finished plain-Ultralytics run in it (proj/run) whose files must never change."""
    tmp = tmp_path_factory.mktemp("badtable")
    run = tmp / "proj" / "run" / "weights"
    run.mkdir(parents=True)
    import torch

    torch.save({"model": None, "train_args": {"data": "x"}, "epoch": 3}, run / "last.pt")
    (run.parent / "results.csv").write_text("epoch,metrics/mAP50-95(B)\n1,0.1\n")
    return {"T": str(teacher_pt), "D": str(tiny_data), "TMP": str(tmp)}


@pytest.mark.parametrize(("line", "msg"), CASES, ids=[c[0][:50] for c in CASES])
def test_bad_input_gets_one_line_and_writes_nothing(line, msg, world, monkeypatch, capsys):
    """Exit 2, one 'yolo-kd: error:' line naming the problem, no traceback, every file and folder unchanged."""
    tmp, data_dir = Path(world["TMP"]), Path(world["D"]).parent
    monkeypatch.chdir(tmp)  # a stray runs/ or out file would show up in the hash
    before = tree(tmp, data_dir)
    argv = [a.format(**world) for a in line.split()]
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("yolo-kd: error:") and msg in err[0], (argv, err)
    assert tree(tmp, data_dir) == before, f"{line} wrote or changed files"


def test_the_table_covers_every_command():
    """At least 60 cases, and every command of the CLI appears in them."""
    from yolo_kd.cli import COMMANDS

    assert len(CASES) >= 60
    assert set(COMMANDS) <= {c[0].split()[0] for c in CASES}
