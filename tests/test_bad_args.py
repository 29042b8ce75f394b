"""Issue 37 item 5: wrong types and ranges of Ultralytics' own train arguments and of ours, checked in one place
(``cfg.split_overrides``) before any work: one line, exit 2 (``KDError`` in the API), nothing written."""

from __future__ import annotations

import hashlib

import pytest

from yolo_kd.cli import main
from yolo_kd.errors import KDError
from yolo_kd.trainer import KDTrainer

CASES = [
    ("epochs=abc", "'epochs' must be an int"),
    ("lr0=x", "Valid 'lr0' types are int"),
    ("fraction=0", "'fraction=0' invalid"),
    ("imgsz=-1", "imgsz=-1 must be a size in pixels"),
    ("imgsz=0", "imgsz=0 must be a size in pixels"),
    ("device=0", "asks for CUDA GPU(s) but torch sees"),
    ("device=cuda:3", "asks for CUDA GPU(s)"),
    ("pseudo_max=abc", "pseudo_max='abc' is not an integer"),
    ("pseudo_iou=high", "pseudo_iou='high' is not a number"),
    ("unlabeled_ratio=[1]", "unlabeled_ratio=[1] is not a number"),
    ("kd_final=q", "kd_final='q' is not a number"),
    ("kd_balance_every=often", "kd_balance_every='often' is not an integer"),
    ("method=", "method= is empty; leave it out for the default"),
]


def _tree(folder) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("arg,msg", CASES)
def test_bad_train_argument_is_one_line_and_writes_nothing(arg, msg, train_args, tmp_path, capsys, monkeypatch):
    if arg == "device=0":
        import torch

        if torch.cuda.device_count():
            pytest.skip("this machine has a CUDA GPU: device=0 is valid here")
    monkeypatch.chdir(tmp_path)
    earlier = tmp_path / "proj" / "run"
    (earlier / "weights").mkdir(parents=True)
    (earlier / "weights" / "last.pt").write_bytes(b"an earlier run")
    before = _tree(tmp_path)
    argv = ["train", f"teacher={train_args['teacher']}", f"data={train_args['data']}", "epochs=1",
            f"project={tmp_path / 'proj'}", "name=run", arg]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("yolo-kd: error:") and msg in err[0], err
    assert _tree(tmp_path) == before  # no file or folder created, the earlier run untouched


def test_api_raises_kderror_for_bad_ultralytics_arguments(train_args, tmp_path):
    for over in ({"epochs": "abc"}, {"imgsz": -1}, {"pseudo_max": "x"}):
        with pytest.raises(KDError):
            KDTrainer(overrides={**train_args, **over, "project": str(tmp_path / "p")})
    assert not (tmp_path / "p").exists()


def test_students_without_their_task_are_refused_before_any_folder(train_args, tmp_path, capsys, monkeypatch):
    """A classification student (yaml or .pt), a segmentation student on box-only labels and an unreadable student
    file: one line, exit 2, no run folder (a classification student used to stop with a traceback after its run
    folder was made)."""
    import torch
    from ultralytics.nn.tasks import ClassificationModel

    monkeypatch.chdir(tmp_path)
    torch.save({"model": ClassificationModel("yolov8n-cls.yaml", nc=3, verbose=False).half(), "train_args": {}},
               tmp_path / "cls.pt")  # fmt: skip
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 64)
    for student, msg in (("cls.pt", "is a classify model"), ("yolov8n-cls.yaml", "is a classify model"),
                         ("yolov8n-seg.yaml", "a segment student needs"),
                         ("junk.pt", "not a readable model")):  # fmt: skip
        argv = ["train", f"teacher={train_args['teacher']}", f"data={train_args['data']}", f"student={student}",
                f"project={tmp_path / 'proj'}"]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    assert not (tmp_path / "proj").exists() and not (tmp_path / "runs").exists()


def test_fix_bn_and_convert_check_their_keys_and_inputs(train_args, tmp_path, capsys, monkeypatch):
    """Issue 37 item 7: typos in convert / fix-bn keys, a random-bytes or classification checkpoint to fix-bn and a
    non-numeric image count: one line each, exit 2, nothing written."""
    import torch
    from ultralytics.nn.tasks import ClassificationModel

    monkeypatch.chdir(tmp_path)
    (tmp_path / "rnd.pt").write_bytes(bytes(range(256)) * 2)
    torch.save({"model": ClassificationModel("yolov8n-cls.yaml", nc=3, verbose=False).half()}, tmp_path / "cls.pt")
    data = train_args["data"]
    cases = [
        (["fix-bn", "model=rnd.pt", f"data={data}"], "rnd.pt is not a readable checkpoint"),
        (["fix-bn", "model=cls.pt", f"data={data}"], "holds a ClassificationModel"),
        (["fix-bn", f"model={train_args['teacher']}", f"data={data}", "imags=64"], "Did you mean 'images'"),
        (["fix-bn", f"model={train_args['teacher']}", f"data={data}", "images=abc"], "must be a positive whole"),
        (["convert", "kitti", "src=a", "dst=b", "val_frac=0.3"], "Did you mean 'val_fraction'"),
        (["convert", "coco-traffic", "src=a", "dst=b", "lnk=True"], "Did you mean 'link'"),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("yolo-kd: error:") and msg in err[0], (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
