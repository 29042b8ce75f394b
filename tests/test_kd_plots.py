"""KD run extras: the KD-term plot from results.csv and the folded teacher-freezing log lines."""

from __future__ import annotations

import logging

from yolo_kd.kd_plots import TeacherFreezeFilter, kd_columns, plot_kd_terms


def test_kd_terms_plot_reads_train_columns(tmp_path):
    """One panel per KD term found as train/<name>; val columns and missing terms are ignored."""
    csv = tmp_path / "results.csv"
    csv.write_text(
        "epoch, train/box_loss, train/gkd, val/gkd, train/bmfi_fg\n1, 3.0, 0.5, 0, 2.0\n2, 2.5, 0.4, 0, 1.5\n"
    )
    assert kd_columns(csv, ("gkd", "bmfi_fg", "absent")) == {"gkd": [0.5, 0.4], "bmfi_fg": [2.0, 1.5]}
    out = plot_kd_terms(csv, ("gkd", "bmfi_fg"), tmp_path / "kd_terms.png")
    assert out and out.stat().st_size > 1000
    assert plot_kd_terms(tmp_path / "none.csv", ("gkd",), tmp_path / "x.png") is None


def test_teacher_freeze_lines_are_counted_not_printed():
    """Ultralytics' per-tensor freezing lines for the teacher are dropped and counted; other lines pass."""
    f = TeacherFreezeFilter()
    rec = lambda msg: logging.LogRecord("ultralytics", logging.INFO, "", 0, msg, None, None)  # noqa: E731
    assert not f.filter(rec("Freezing layer 'teacher_model.model.0.conv.weight'"))
    assert f.filter(rec("Freezing layer 'model.22.dfl.conv.weight'")) and f.filter(rec("other"))
    assert f.count == 1
