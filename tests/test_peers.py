"""Peer baselines CWD, MGD, FGD and PKD against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_kd.errors import KDError
from yolo_kd.losses import build_loss
from yolo_kd.losses.base import KDInputs
from yolo_kd.losses.cwd import channel_kl
from yolo_kd.losses.fgd import fgd_box_mask
from yolo_kd.losses.pkd import standardise


def one_level(s: torch.Tensor, t: torch.Tensor, boxes: list[list[float]] | None = None, stride: float = 8.0):
    """KDInputs with a single level and boxes given as xyxy pixels on image 0."""
    h, w = t.shape[-2:]
    b = torch.tensor(boxes or [], dtype=torch.float32).view(-1, 4)
    img_h, img_w = h * stride, w * stride
    xywh = torch.cat([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], 1) / torch.tensor([img_w, img_h] * 2)
    batch = {"img": torch.zeros(t.shape[0], 3, int(img_h), int(img_w)), "batch_idx": torch.zeros(len(b)),
             "cls": torch.zeros(len(b), 1), "bboxes": xywh}  # fmt: skip
    return KDInputs(s_feats=[s], t_feats=[t], s_head={}, t_head={}, batch=batch, strides=[stride])


def test_cwd_golden_and_temperature():
    """KL of per-channel spatial softmaxes: t -> [1/4, 3/4], s -> [1/2, 1/2]; tau^2 scaling; divide by N*C."""
    t = torch.tensor([0.0, math.log(3)]).view(1, 1, 1, 2)
    s = torch.zeros(1, 1, 1, 2)
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert channel_kl(s, t, 1.0).item() == pytest.approx(kl, rel=1e-6)
    assert channel_kl(s, 2 * t, 2.0).item() == pytest.approx(4 * kl, rel=1e-6)  # same distributions, x tau^2
    two = torch.cat([t, torch.zeros_like(t)], 1)  # second channel identical -> KL 0, mean over 2 channels
    assert channel_kl(torch.zeros_like(two), two, 1.0).item() == pytest.approx(kl / 2, rel=1e-6)
    loss = build_loss("cwd", {}, [1], [1])
    assert loss(one_level(s, t))["cwd"].item() == pytest.approx(10 * kl, rel=1e-6)


def test_cwd_norm_makes_it_scale_invariant():
    """With norm=True (non-affine BN on both sides) scaling the teacher map changes nothing."""
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g)
    loss = build_loss("cwd", {"cwd": {"norm": True}}, [4], [4])
    a, b = loss(one_level(s, t))["cwd"], loss(one_level(s, 7 * t + 3))["cwd"]
    assert a.item() == pytest.approx(b.item(), rel=1e-4) and a > 0


def test_pkd_standardise_and_pearson_identity():
    """Per-channel standardisation over (N, H, W); loss = weight * (n-1)/n * mean_c (1 - r_c)."""
    f = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    z = standardise(f)
    assert torch.allclose(z.flatten(), (torch.tensor([1.0, 2, 3, 4]) - 2.5) / math.sqrt(5 / 3), atol=1e-5)
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(3, 2, 4, 4, generator=g), torch.randn(3, 2, 4, 4, generator=g)
    n = 3 * 16
    r = [torch.corrcoef(torch.stack([s[:, c].flatten(), t[:, c].flatten()]))[0, 1] for c in range(2)]
    want = 10 * (n - 1) / n * sum(1 - rc for rc in r) / 2
    assert build_loss("pkd", {}, [2], [2])(one_level(s, t))["pkd"].item() == pytest.approx(want.item(), rel=1e-4)
    assert build_loss("pkd", {}, [2], [2])(one_level(s, 5 * s + 1))["pkd"].item() == pytest.approx(0, abs=1e-6)


def test_mgd_golden_mask_and_generator():
    """Zero generator -> alpha * sum T^2 / N; the mask drops ~ratio of positions, shared by all channels."""
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(2, 4, 5, 5, generator=g), torch.randn(2, 8, 5, 5, generator=g)
    loss = build_loss("mgd", {}, [4], [8])
    for p in loss.generator.parameters():
        torch.nn.init.zeros_(p)
    assert loss(one_level(s, t))["mgd"].item() == pytest.approx(2e-5 * (t**2).sum().item() / 2, rel=1e-5)
    torch.manual_seed(0)
    m = loss.mask(torch.zeros(4, 3, 100, 100))
    assert m.shape == (4, 1, 100, 100) and abs(1 - m.mean().item() - 0.65) < 0.01
    with pytest.raises(KDError, match="mgd_ratio=1.0"):
        build_loss("mgd", {"mgd": {"ratio": 1.0}}, [4], [8])


def test_fgd_box_mask_golden():
    """Cells floor(x1)..ceil(x2) inclusive get 1/(rows*cols); overlaps take the max; border clipped; no boxes."""
    m = fgd_box_mask(torch.tensor([[8.0, 8.0, 24.0, 24.0]]), torch.tensor([0]), 1, 6, 6, 8.0)
    assert torch.allclose(m[0, 1:4, 1:4], torch.full((3, 3), 1 / 9)) and m.sum().item() == pytest.approx(1.0)
    two = torch.tensor([[8.0, 8.0, 24.0, 24.0], [0.0, 0.0, 8.0, 8.0]])
    m = fgd_box_mask(two, torch.tensor([0, 0]), 1, 6, 6, 8.0)
    assert m[0, 0, 0].item() == pytest.approx(1 / 4) and m[0, 1, 1].item() == pytest.approx(1 / 4)
    edge = fgd_box_mask(torch.tensor([[36.0, 36.0, 48.0, 48.0]]), torch.tensor([0]), 1, 6, 6, 8.0)
    assert edge[0, 4:, 4:].eq(1 / 9).all() and edge.sum().item() == pytest.approx(4 / 9)  # 3x3 span, 2x2 inside
    assert fgd_box_mask(torch.zeros(0, 4), torch.zeros(0), 2, 3, 3, 8.0).eq(0).all()


def test_fgd_terms_golden():
    """Uniform maps -> attention 1: fg = C * sum M_fg, bg = C, att = 0, rela = sum (S - T)^2 / N at init."""
    t, s = torch.ones(1, 2, 4, 4), 2 * torch.ones(1, 2, 4, 4)
    w = {"alpha": 1.0, "beta": 1.0, "gamma": 1.0, "lam": 1.0}
    out = build_loss("fgd", {"fgd": w}, [2], [2])(one_level(s, t, [[8.0, 8.0, 24.0, 24.0]]))
    assert out["fgd_fg"].item() == pytest.approx(2.0) and out["fgd_bg"].item() == pytest.approx(2.0)
    assert out["fgd_att"].item() == pytest.approx(0.0, abs=1e-6) and out["fgd_rela"].item() == pytest.approx(32.0)
    default = build_loss("fgd", {}, [2], [4])
    assert default.names == ("fgd_fg", "fgd_bg", "fgd_att", "fgd_rela") and default.align[0].out_channels == 4
