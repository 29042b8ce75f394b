"""``yolo-kd inspect``: region masses and gradient shares on toy cases, then the command on the tiny data."""

from __future__ import annotations

import pytest
import torch

from yolo_kd.tools.inspect import PAD, grad_shares, region_mass, summarise


def test_region_mass_golden():
    """A 4x4 level (stride 8): one box over 2 cells, the right half of the image is padding."""
    img = torch.rand(1, 3, 32, 32) * 0.3
    img[..., 16:] = PAD
    m = torch.zeros(1, 4, 4)
    m[0, 0, 0] = 3.0  # in the box (pixels 0..16 x 0..8 -> cells (0,0), (0,1))
    m[0, 2, 3] = 1.0  # padding
    m[0, 3, 0] = 4.0  # background
    r = region_mass(m, img, torch.tensor([[0.0, 0.0, 16.0, 8.0]]), torch.tensor([0]), 8.0)
    assert r == pytest.approx({"box": 3 / 8, "pad": 1 / 8, "bg": 4 / 8, "chance": 2 / 16})


def test_grad_shares_golden():
    """Share = |grad of term x batch size| / |grad of detection loss| on the given parameters."""
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    det = (3 * p).sum()  # grad (3, 3)
    terms = {"a": (p**2).sum(), "b": torch.zeros(())}  # grad 2p = (2, 4); b has no graph
    s = grad_shares(det, terms, [p], bs=2)
    assert s["a"] == pytest.approx(2 * (20**0.5) / (18**0.5)) and s["b"] == 0.0


def test_summary_warns_inert_dominant_and_weak_teacher():
    """Inert (< 0.1x) and dominating (> 20x) terms and a teacher below the student are named."""
    rep = summarise("a+b", {"a": [1.0], "b": [2.0]}, {"a": [0.05], "b": [25.0]}, {}, {"teacher": 0.2, "student": 0.3})
    text = "\n".join(rep["warnings"])
    assert "'a' is inert" in text and "'b' dominates" in text and "teacher is not stronger" in text


def test_inspect_command_on_tiny_data(tiny_data, teacher_pt, tmp_path):
    """Real batches through KDTrainer: every term gets a share, map methods get masses, a PNG is written."""
    from yolo_kd.tools.inspect import run_inspect

    rep = run_inspect(teacher=str(teacher_pt), data=str(tiny_data), method="builtin+gkd+bmfi", batches=2, imgsz=64,
                      batch=4, out=str(tmp_path), device="cpu")  # fmt: skip
    assert {"builtin", "gkd", "bmfi_fg", "bmfi_att"} <= set(rep["shares"])
    assert all(v > 0 for k, v in rep["shares"].items())
    assert {k.split("/")[0] for k in rep["mass"]} == {"builtin", "gkd", "bmfi_fg"}
    for ms in rep["mass"].values():
        assert all(m["box"] + m["bg"] + m["pad"] == pytest.approx(1.0) for m in ms)
    assert (tmp_path / "inspect-builtin-gkd-bmfi.png").stat().st_size > 1000


def test_train_imgsz_is_the_checkpoints_own(teacher_pt, tmp_path):
    """inspect (and export) default to the size a checkpoint was trained at, as ``YOLO("best.pt").val()`` does."""
    from yolo_kd.checkpoint.safe_load import train_imgsz

    ckpt = torch.load(teacher_pt, weights_only=False)
    torch.save({**ckpt, "train_args": {"imgsz": 160}}, tmp_path / "t160.pt")
    assert train_imgsz(tmp_path / "t160.pt") == 160
    assert train_imgsz(teacher_pt) is None and train_imgsz("yolov8n.yaml") is None  # no train args / not a .pt
