"""`yolo-kd predict` on an OpenVINO IR: options as `yolo predict`, and what it does with bad files and paths."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.conftest import EDGE_IMGSZ as IMGSZ
from tests.conftest import images_of
from yolo_kd.errors import KDError


def test_predict_options_as_yolo_predict(exported, tmp_path, capsys):
    """`yolo-kd predict` takes imgsz (checked against the IR), classes, max_det and save=True (annotated images),
    and prints one summary line per image."""
    from yolo_kd.tools.predict import predict

    ir, files = exported["ov"]["export"], images_of(exported["data"])
    src = files[0].parent
    every = predict(ir, str(src), conf=0.01, imgsz=IMGSZ, save=True, project=str(tmp_path / "p"))
    assert (
        len(list((tmp_path / "p").glob("*.jpg"))) == len(every) and "annotated images saved" in capsys.readouterr().out
    )
    assert max(len(r["detections"]) for r in predict(ir, str(src), conf=0.01, max_det=2)) <= 2
    only = predict(ir, str(src), conf=0.01, classes=[0])
    assert all(x["class"] == 0 for r in only for x in r["detections"])
    assert sum(len(r["detections"]) for r in only) <= sum(len(r["detections"]) for r in every)
    with pytest.raises(KDError, match=f"exported at imgsz={IMGSZ}"):
        predict(ir, str(src), imgsz=IMGSZ * 2)


def test_predict_skips_unreadable_files_and_checks_out_and_classes_first(exported, tmp_path, capsys):
    """Issue 37 item 8: one undecodable file in a folder is skipped with a line and the rest are predicted and
    written; an unwritable out= and an unknown class are refused before any inference."""
    from yolo_kd.tools.predict import predict

    ir, files = exported["ov"]["export"], images_of(exported["data"])
    src = tmp_path / "frames"
    src.mkdir()
    for f in files:
        shutil.copy(f, src / f.name)
    (src / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "preds.json"
    recs = predict(ir, str(src), conf=0.01, out=str(out))
    printed = capsys.readouterr().out
    assert (
        len(recs) == len(files) and "skipped: cannot read image" in printed and "1 unreadable files skipped" in printed
    )
    assert len(json.loads(out.read_text())) == len(files)
    cases = [({"out": str(tmp_path / "no" / "p.json")}, "cannot write"), ({"out": str(tmp_path)}, "is a folder"),
             ({"classes": "nosuchclass"}, "not classes of this model")]  # fmt: skip
    if os.geteuid() != 0:  # root writes into read-only folders
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        cases.append(({"out": str(ro / "p.json")}, "cannot write"))
    for bad, msg in cases:
        with pytest.raises(KDError, match=msg):
            predict(ir, str(src), conf=0.01, **bad)
        assert "ms" not in capsys.readouterr().out  # refused before the first image was predicted
    with pytest.raises(KDError, match="cannot read image"):
        predict(ir, str(src / "broken.jpg"))  # a single file that cannot be read is the error itself
