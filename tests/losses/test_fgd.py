"""fgd: golden values on tiny hand-made tensors (see yolo_kd/losses/fgd.py)."""

from __future__ import annotations

import pytest
import torch

from tests.losses.inputs import peer_level
from yolo_kd.losses import build_loss
from yolo_kd.losses.fgd import fgd_box_mask


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
    out = build_loss("fgd", {"fgd": w}, [2], [2])(peer_level(s, t, [[8.0, 8.0, 24.0, 24.0]]))
    assert out["fgd_fg"].item() == pytest.approx(2.0) and out["fgd_bg"].item() == pytest.approx(2.0)
    assert out["fgd_att"].item() == pytest.approx(0.0, abs=1e-6) and out["fgd_rela"].item() == pytest.approx(32.0)
    default = build_loss("fgd", {}, [2], [4])
    assert default.names == ("fgd_fg", "fgd_bg", "fgd_att", "fgd_rela") and default.align[0].out_channels == 4


def test_fgd_documented_defaults():
    """Every documented default of fgd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("fgd") == {"alpha": 0.001, "beta": 0.0005, "gamma": 0.0005, "lam": 5e-06, "tau": 0.5}
