"""The main job on its embedded default, fast preset (slow: a few minutes on 2 CPU cores)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_demo_fast(tmp_path):
    """`yolo-kd demo fast=True` trains teacher, student and KD student and writes the comparison table."""
    from yolo_kd.cli import main

    assert main(["demo", "fast=True", f"dir={tmp_path}"]) == 0
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [r["run"].split()[0] for r in rows] == ["teacher", "student", "student"]
    assert all(0.0 <= r["mAP50-95"] <= r["mAP50"] <= 1.0 and r["train_s"] > 0 for r in rows)
    assert rows[0]["mAP50"] > 0.05 and rows[1]["mAP50"] > 0.02  # teacher and student detect (not an all-zero table)
    table = (tmp_path / "table.md").read_text()
    assert rows[0]["params"] > 3 * rows[1]["params"] and "| run | mAP50 |" in table and "yolo-kd benchmark kd" in table
