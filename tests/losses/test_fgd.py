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


def _att(f: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial (B, H, W) and channel (B, C) attention written out: HW softmax(mean_c|F|/T), C softmax(mean_hw|F|/T)."""
    b, c, h, w = f.shape
    sp = torch.exp(f.abs().mean(1) / tau)
    ch = torch.exp(f.abs().mean((2, 3)) / tau)
    return h * w * sp / sp.sum((1, 2), keepdim=True), c * ch / ch.sum(1, keepdim=True)


def _gc(block, x: torch.Tensor) -> torch.Tensor:
    """GCNet block by hand: x + W2 ReLU(LN(W1 ctx)), ctx = sum_j softmax_j(Wk x) x_j."""
    b, c = x.shape[:2]
    k = torch.einsum("c,bcp->bp", block.mask.weight[0, :, 0, 0], x.flatten(2)) + block.mask.bias
    a = torch.exp(k - k.amax(1, keepdim=True))
    ctx = torch.einsum("bcp,bp->bc", x.flatten(2), a / a.sum(1, keepdim=True))
    conv1, ln, _, conv2 = block.add
    h = ctx @ conv1.weight[:, :, 0, 0].T + conv1.bias
    h = (h - h.mean(1, keepdim=True)) / torch.sqrt(h.var(1, unbiased=False, keepdim=True) + ln.eps)
    h = torch.relu(h * ln.weight.view(1, -1) + ln.bias.view(1, -1))
    return x + (h @ conv2.weight[:, :, 0, 0].T + conv2.bias)[:, :, None, None]


def test_fgd_golden_two_images_random_maps_by_hand():
    """Batch 2 (a box on image 0 only), 4 channels, random maps, trained-looking GcBlocks: fg, bg, att and rela with the
    default weights, against masks and formulas written out here (1/9 per cell of the 3x3 box span, 1/N_bg off it,
    1/16 everywhere on the image without boxes; sums over channels and cells divided by the batch size)."""
    torch.manual_seed(1)
    t, s = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)
    loss = build_loss("fgd", {}, [4], [4])
    for blk in (*loss.gc_s, *loss.gc_t):
        torch.nn.init.normal_(blk.add[-1].weight, std=0.5)
        torch.nn.init.normal_(blk.add[-1].bias, std=0.2)
    out = loss(peer_level(s, t, [[8.0, 8.0, 24.0, 24.0]]))
    fg = torch.zeros(2, 4, 4)
    fg[0, 1:4, 1:4] = 1 / 9
    bg = torch.zeros(2, 4, 4)
    bg[0] = (fg[0] == 0).float() / 7
    bg[1] = 1 / 16
    (st, ct), (ss, cs) = _att(t, 0.5), _att(s, 0.5)
    d = (s - t) ** 2 * st[:, None] * ct[:, :, None, None]
    want = {
        "fg": 1e-3 * (d * fg[:, None]).sum() / 2,
        "bg": 5e-4 * (d * bg[:, None]).sum() / 2,
        "att": 5e-4 * ((cs - ct).abs().sum() + (ss - st).abs().sum()) / 2,
        "rela": 5e-6 * ((_gc(loss.gc_s[0], s) - _gc(loss.gc_t[0], t)) ** 2).sum() / 2,
    }
    for k, v in want.items():
        assert out[f"fgd_{k}"].item() == pytest.approx(v.item(), rel=1e-4), k
    assert torch.allclose(loss.gc_s[0](s), _gc(loss.gc_s[0], s), atol=1e-5)


def test_fgd_sums_levels():
    """Two levels: each term is the sum of the two levels' terms (stride 8 and 16, the box on both)."""
    from yolo_kd.losses.base import KDInputs

    torch.manual_seed(2)
    s = [torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)]
    t = [torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)]
    loss = build_loss("fgd", {}, [4, 4], [4, 4])
    one = [build_loss("fgd", {}, [4], [4]) for _ in range(2)]
    for i in range(2):
        one[i].gc_s[0].load_state_dict(loss.gc_s[i].state_dict())
        one[i].gc_t[0].load_state_dict(loss.gc_t[i].state_dict())
    box = [[8.0, 8.0, 40.0, 24.0]]
    both = peer_level(s[0], t[0], box)
    both = KDInputs(s_feats=s, t_feats=t, s_head={}, t_head={}, batch=both.batch, strides=[8.0, 16.0])
    got = loss(both)
    parts = [one[0](peer_level(s[0], t[0], box, 8.0)), one[1](peer_level(s[1], t[1], box, 16.0))]
    for k in got:
        assert got[k].item() == pytest.approx(parts[0][k].item() + parts[1][k].item(), rel=1e-5), k
