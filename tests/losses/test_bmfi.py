"""bmfi: golden values on tiny hand-made tensors (see yolo_kd/losses/bmfi.py)."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_kd.losses import build_loss
from yolo_kd.losses.base import KDInputs
from yolo_kd.losses.bmfi import gaussian_box_mask
from yolo_kd.losses.functional import background_mask, spatial_channel_attention


def test_box_mask_golden_inside_ring_and_border():
    """Box of 2x2 cells on a stride-8 level: inside 1/16, ring Gaussian/16, outside the ring 0; clipped at border."""
    box = torch.tensor([[16.0, 16.0, 32.0, 32.0]])  # cells 2..4 at stride 8 -> 2x2 cells, expanded 4x4
    m = gaussian_box_mask(box, torch.tensor([0]), 1, 8, 8, 8.0)[0]
    area = 16.0
    assert m[2, 2].item() == pytest.approx(1 / area) and m[3, 3].item() == pytest.approx(1 / area)
    # cell (row 1, col 2): centre (2.5, 1.5), box centre (3, 3), sigma = 2 -> g = exp(-.5*(0.5/2)^2)*exp(-.5*(1.5/2)^2)
    assert m[1, 2].item() == pytest.approx(math.exp(-0.5 * 0.25**2) * math.exp(-0.5 * 0.75**2) / area, rel=1e-5)
    assert m[0, 0].item() == 0.0 and m[6, 6].item() == 0.0  # outside the expanded box
    edge = gaussian_box_mask(torch.tensor([[0.0, 0.0, 8.0, 8.0]]), torch.tensor([0]), 1, 4, 4, 8.0)[0]
    assert edge[0, 0].item() == pytest.approx(1 / 4) and edge.shape == (4, 4)  # 1x1 box at the corner, area 2x2
    assert torch.isfinite(edge).all()


def test_default_mask_is_the_box_cells_only():
    """The default (no ring, expand 1): 1/area on the cells the box overlaps, 0 elsewhere; alpha keeps their weight."""
    loss = build_loss("bmfi", {}, [1], [1])
    assert loss.expand == 1.0 and loss.w["fg"] == pytest.approx(0.25 / 4)  # the ring's 4x area, taken out of alpha
    box = torch.tensor([[16.0, 16.0, 32.0, 32.0]])  # 2x2 cells at stride 8
    m = gaussian_box_mask(box, torch.tensor([0]), 1, 8, 8, 8.0, expand=loss.expand)[0]
    want = torch.zeros(8, 8)
    want[2:4, 2:4] = 1 / 4
    assert torch.allclose(m, want)
    ring = gaussian_box_mask(box, torch.tensor([0]), 1, 8, 8, 8.0, expand=2.0)[0]
    assert torch.allclose(loss.w["fg"] * m[2:4, 2:4], 0.25 * ring[2:4, 2:4])  # box cells: same weight as the ring's


def test_box_mask_overlap_max_and_empty():
    """Overlapping boxes take the max; boxes go to their own image; no boxes gives zeros and bg = 1/HW."""
    big = torch.tensor([[0.0, 0.0, 32.0, 32.0]])
    small = torch.tensor([[8.0, 8.0, 16.0, 16.0]])
    both = gaussian_box_mask(torch.cat([big, small]), torch.tensor([0, 0]), 2, 4, 4, 8.0)
    a = gaussian_box_mask(big, torch.tensor([0]), 2, 4, 4, 8.0)
    b = gaussian_box_mask(small, torch.tensor([0]), 2, 4, 4, 8.0)
    assert torch.allclose(both, torch.maximum(a, b)) and both[1].abs().sum() == 0
    none = gaussian_box_mask(torch.zeros(0, 4), torch.zeros(0), 1, 3, 3, 8.0)
    assert none.abs().sum() == 0
    assert torch.allclose(background_mask(none), torch.full((1, 3, 3), 1 / 9))


def test_attention_golden():
    """S = HW softmax(mean_c|F|/tau), C = C softmax(mean_hw|F|/tau)."""
    f = torch.tensor([[[[1.0, -3.0]], [[1.0, 1.0]]]])  # (1, 2, 1, 2)
    s, c = spatial_channel_attention(f, 0.5)
    assert torch.allclose(s[0, 0], 2 * torch.softmax(torch.tensor([2.0, 4.0]), 0))
    assert torch.allclose(c[0], 2 * torch.softmax(torch.tensor([4.0, 2.0]), 0))


def test_bmfi_terms_golden():
    """Every BMFI term on a 1-channel 1x2 map with one box covering the first cell."""
    args = {"alpha": 1.0, "beta": 1.0, "gamma": 1.0, "lam": 1.0, "tau": 0.5, "expand": 2.0, "adapter": "conv"}
    loss = build_loss("bmfi", {"bmfi": args}, [1], [1])  # the paper's ring (expand 2), so cell 1 gets ring weight
    torch.nn.init.ones_(loss.adapt[0].weight), torch.nn.init.zeros_(loss.adapt[0].bias)
    s, t = torch.tensor([[[[1.0, 0.0]]]]), torch.tensor([[[[2.0, 1.0]]]])
    batch = {
        "img": torch.zeros(1, 3, 8, 16),
        "batch_idx": torch.zeros(1),
        "cls": torch.zeros(1, 1),
        "bboxes": torch.tensor([[0.25, 0.5, 0.5, 1.0]]),
    }  # pixels 0..8 x 0..8 -> cell (0, 0) at stride 8
    out = loss(KDInputs(s_feats=[s], t_feats=[t], s_head={}, t_head={}, batch=batch, strides=[8.0]))  # C = 1
    s_t = 2 * torch.softmax(torch.tensor([2.0, 1.0]) / 0.5, 0)  # teacher spatial attention, C_t = 1
    d = torch.tensor([1.0, 1.0]) * s_t  # (s - t)^2 = 1 at both cells
    fg = gaussian_box_mask(torch.tensor([[0.0, 0.0, 8.0, 8.0]]), torch.tensor([0]), 1, 1, 2, 8.0)[0, 0]
    assert fg[0].item() == pytest.approx(0.25) and fg[1].item() > 0  # cell 1 lies in the Gaussian ring
    assert out["bmfi_fg"].item() == pytest.approx((d * fg).sum().item(), rel=1e-5)
    assert out["bmfi_bg"].item() == pytest.approx(0.0)  # every cell is foreground -> no background
    s_s = 2 * torch.softmax(torch.tensor([1.0, 0.0]) / 0.5, 0)
    assert out["bmfi_att"].item() == pytest.approx((s_s - s_t).abs().sum().item(), rel=1e-5)  # C att: 1 vs 1
    assert out["bmfi_glob"].item() == pytest.approx(d.sum().item() / 2, rel=1e-5)


def test_bmfi_documented_defaults():
    """Every documented default of bmfi is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("bmfi") == {
        "alpha": 0.0625,
        "beta": 0.0,
        "gamma": 0.006,
        "lam": 0.0,
        "tau": 1.0,
        "expand": 1.0,
        "adapter": "mlp",
    }


def test_bmfi_golden_three_channels_two_images_two_levels_by_hand():
    """3 channels, batch 2 (boxes on both images), two levels, the default weights and mask (expand 1: the box's
    cells, 1/(cells) each), conv adapters: fg = sum M S_t C_t (S - T)^2 / C / B and att = (sum|C_s - C_t| +
    sum|S_s - S_t|) / B per level, summed; attentions written out here."""
    torch.manual_seed(6)
    s = [torch.randn(2, 2, 4, 4), torch.randn(2, 2, 2, 2)]
    t = [torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    loss = build_loss("bmfi", {"bmfi": {"adapter": "conv"}}, [2, 2], [3, 3])
    batch = {"img": torch.zeros(2, 3, 32, 32), "batch_idx": torch.tensor([0.0, 1.0]), "cls": torch.zeros(2, 1),
             "bboxes": torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.5, 0.5, 1.0]])}  # fmt: skip
    out = loss(KDInputs(s_feats=s, t_feats=t, s_head={}, t_head={}, batch=batch, strides=[8.0, 16.0]))

    def att(f):
        b, c, h, w = f.shape
        sp = torch.exp(f.abs().mean(1) / 1.0)
        ch = torch.exp(f.abs().mean((2, 3)) / 1.0)
        return h * w * sp / sp.sum((1, 2), keepdim=True), c * ch / ch.sum(1, keepdim=True)

    boxes = [[(0, 16, 0, 16), (16, 32, 0, 32)]]  # pixels (x0, x1, y0, y1) of the two images' boxes
    fg_sum = att_sum = 0.0
    for i, stride in enumerate((8, 16)):
        h = 32 // stride
        a = loss.adapt[i]
        fs = torch.einsum("oc,bchw->bohw", a.weight[:, :, 0, 0], s[i]) + a.bias.view(1, -1, 1, 1)
        m = torch.zeros(2, h, h)
        for img, (x0, x1, y0, y1) in enumerate(boxes[0]):
            cells = m[img, y0 // stride : y1 // stride, x0 // stride : x1 // stride]
            cells[:] = 1 / cells.numel()
        (st, ct), (ss, cs) = att(t[i]), att(fs)
        d = (fs - t[i]) ** 2 * st[:, None] * ct[:, :, None, None] / 3
        fg_sum += (d * m[:, None]).sum() / 2
        att_sum += ((cs - ct).abs().sum() + (ss - st).abs().sum()) / 2
    assert set(out) == {"bmfi_fg", "bmfi_att"}
    assert out["bmfi_fg"].item() == pytest.approx(0.0625 * fg_sum.item(), rel=1e-5)
    assert out["bmfi_att"].item() == pytest.approx(6e-3 * att_sum.item(), rel=1e-5)
