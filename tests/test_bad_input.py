"""Bad input: one clear line naming the problem and the fix, no run directory left behind."""

from __future__ import annotations

from pathlib import Path

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
    with pytest.raises(KDError, match="is a ClassificationModel, not a detect, segment, pose or obb model"):
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


def test_bad_input_sweep(train_args, tmp_path, capsys):
    """More bad inputs across commands: each exits 2 with one 'yolo-kd: error:' line naming the problem."""
    from ultralytics.nn.tasks import SegmentationModel

    t = train_args["teacher"]
    (tmp_path / "trunc.pt").write_bytes(open(t, "rb").read()[:2000])
    torch.save({"model": SegmentationModel("yolov8n-seg.yaml", nc=3, verbose=False).half()}, tmp_path / "seg.pt")
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "lin.pt")
    kitti = tmp_path / "kitti" / "training"
    (kitti / "image_2").mkdir(parents=True)
    (kitti / "label_2").mkdir()
    (kitti / "label_2" / "000000.txt").write_text("Car 0 0 0 1 2 3\n")
    (kitti / "image_2" / "000000.png").write_bytes(b"")
    (tmp_path / "bad.jpg").write_text("nope")
    data = train_args["data"]
    cases = [
        (["train", "teacher=" + str(tmp_path / "trunc.pt"), f"data={data}"], "not a readable Ultralytics checkpoint"),
        (["train", "teacher=" + str(tmp_path / "seg.pt"), f"data={data}"], "a detect student takes a detect teacher"),
        (["train", f"teacher={t}", "method=gkd", "gkd_source=side"], "source must be teacher|student"),
        (["train", f"teacher={t}", "method=kd", "kd_temperature=0"], "must be > 0"),
        (["train", f"teacher={t}", "kd_decay=exp"], "kd_decay='exp' is not one of"),
        (["train", f"teacher={t}", "method=gkd", "gkd_weigth=1"], "Did you mean 'gkd_weight'"),
        (["train", f"teacher={t}", "kd_args=[1, 2]"], "kd_args must be a dict"),
        (["convert", "kitti", f"src={tmp_path / 'kitti'}", f"dst={tmp_path / 'out'}"], "expected 15"),
        (["convert", "pascal", "src=a", "dst=b"], "usage: yolo-kd convert"),
        (["export", "model=" + str(tmp_path / "lin.pt")], "holds no YOLO detect/segment/pose/obb model"),
        (["export", "model=" + str(tmp_path / "missing.pt")], "not found"),
        (["predict", f"model={tmp_path}", f"source={tmp_path / 'bad.jpg'}"], "no OpenVINO .xml model"),
        (["benchmark", "kd", "preset=tpu"], "unknown benchmark preset 'tpu'"),
        (["benchmark", "edge", "model=x.pt"], "needs model=student.pt and data="),
        (["train", "epochs"], "not key=value"),
        (["train", f"teacher={t}"], "no data given"),
        (["train", f"teacher={t}", "method=mimic", "mimic_weight=heavy"], "must be a number"),
        (["train", f"teacher={t}", "method=mgd", "mgd_ratio=-5"], "mgd's ratio must be >= 0"),  # any numeric param
        (["train", f"teacher={t}", "method=cwd", "cwd_norm=3"], "must be true or false"),
    ]
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("yolo-kd: error:") and msg in err[0], (argv, err)


def test_bad_datasets_and_existing_run_left_intact(train_args, tmp_path, capsys):
    """Empty train split, label class out of range, non-numeric class id: one line each, exit 2; an existing run
    directory with the same name keeps its files, and no new run directory is left behind."""
    import shutil

    import yaml

    from yolo_kd.cli import main

    src = yaml.safe_load(open(train_args["data"]))
    run = tmp_path / "proj" / "run"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "last.pt").write_bytes(b"precious")

    def dataset(name: str, label: str | None) -> Path:
        root = tmp_path / name
        shutil.copytree(src["path"], root)
        if label is None:
            for f in (root / "images" / "train").iterdir():
                f.unlink()
        else:
            next((root / "labels" / "train").glob("*.txt")).write_text(label)
        (root / "data.yaml").write_text(yaml.safe_dump({**src, "path": str(root)}))
        return root / "data.yaml"

    cases = [
        (dataset("empty", None), "no images in the train split"),
        (dataset("range", "7 0.5 0.5 0.1 0.1\n"), "class 7 but the data yaml has 3 classes"),
        (dataset("nan", "car 0.5 0.5 0.1 0.1\n"), "class id 'car' is not a number"),
    ]
    for data, msg in cases:
        argv = ["train", f"teacher={train_args['teacher']}", f"data={data}", "imgsz=64", "device=cpu",
                f"project={tmp_path / 'proj'}", "name=run"]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    assert sorted(p.name for p in (tmp_path / "proj").iterdir()) == ["run"]
    assert (run / "weights" / "last.pt").read_bytes() == b"precious" and not (run / "args.yaml").exists()


def test_every_command_checks_its_keys_and_has_help(train_args, capsys, tmp_path):
    """Typos in predict/export/demo/inspect keys, a missing data yaml: one line, exit 2, no run folder; COMMAND --help
    prints that command's keys (issue 19)."""
    cases = [
        (["predict", "model=m_openvino_model", "source=a.jpg", "confd=0.3"], "Did you mean 'conf'"),
        (["demo", "fats=True"], "Did you mean 'fast'"),
        (["inspect", f"teacher={train_args['teacher']}", "data=d.yaml", "batchs=2"], "'batchs' is not a valid"),
        (["train", f"teacher={train_args['teacher']}", "data=nodata.yaml", f"project={tmp_path / 'p'}"],
         "'nodata.yaml' does not exist"),
    ]  # fmt: skip
    for argv, msg in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("yolo-kd: error:") and msg in err[0], err
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").rglob("*"))
    for cmd, key in (("predict", "source="), ("export", "format="), ("inspect", "batches=")):
        assert main([cmd, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"yolo-kd {cmd}:") and key in out


def test_official_weight_names_download_only_when_online(monkeypatch, tmp_path):
    """`teacher=yolov8l.pt` goes to Ultralytics' downloader when online; offline (YOLO_OFFLINE=1) it is one clear
    error, and a name that is not an official asset is never sent to the downloader (no network in this test)."""
    import ultralytics.utils.downloads as dl

    from yolo_kd import paths

    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(dl, "attempt_download_asset", lambda name: calls.append(name) or str(tmp_path / name))
    monkeypatch.setattr(paths, "offline", lambda: False)
    assert paths.resolve_weights("yolov8l.pt", "teacher") == str(tmp_path / "yolov8l.pt") and calls == ["yolov8l.pt"]
    with pytest.raises(KDError, match="not an official Ultralytics weight name"):
        paths.resolve_weights("my_teacher.pt", "teacher")
    monkeypatch.setattr(paths, "offline", lambda: True)
    with pytest.raises(KDError, match="offline"):
        paths.resolve_weights("yolov8l.pt", "teacher")
    assert calls == ["yolov8l.pt"]
