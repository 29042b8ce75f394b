"""aid: golden values on tiny hand-made tensors (see yolo_kd/losses/aid.py)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.losses.inputs import seed_level, sig
from yolo_kd.losses import build_loss
from yolo_kd.losses.functional import binary_kl


def test_aid_weights_and_logit_term():
    """Teacher per-anchor loss (1 - IoU) + BCE(z, IoU), instance mean, normalised by the batch mean, exp(-alpha D)."""
    gts = [[0.0, 0.0, 8.0, 8.0], [8.0, 0.0, 24.0, 8.0]]
    x = seed_level([0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [True, True, True], gt_idx=[0, 1, 1], gts=gts)
    aid = build_loss("aid", {}, [2], [2])
    fg, w_anchor, w_gt = aid.weights(x)
    bce = lambda z, y: -(y * math.log(sig(z)) + (1 - y) * math.log(1 - sig(z)))  # noqa: E731
    d0 = 0.0 + bce(1.0, 1.0)  # teacher box (0,0,8,8) == GT 0: IoU 1
    d1 = ((1 - 0.5) + bce(-1.0, 0.5) + (1 - 0.5) + bce(0.5, 0.5)) / 2  # boxes (8,0,16,8), (16,0,24,8) vs (8,0,24,8)
    m = (d0 + d1) / 2
    want = [math.exp(-0.1 * d0 / m), math.exp(-0.1 * d1 / m)]
    assert w_gt.tolist() == pytest.approx(want, rel=1e-5) and w_anchor[0].tolist() == pytest.approx(
        [want[0], want[1], want[1]], rel=1e-5
    )
    kl = binary_kl(torch.zeros(3) / 2, torch.tensor([1.0, -1.0, 0.5]) / 2) * 4
    logit = (kl * torch.tensor([want[0], want[1], want[1]])).sum() / 3
    assert aid(x)["aid_logit"].item() == pytest.approx(logit.item(), rel=1e-5)
    lvl = build_loss("aid", {"aid": {"mode": "level"}}, [2], [2]).weights(x)[2]
    assert lvl.tolist() == pytest.approx([math.exp(-0.1)], rel=1e-5)  # one level: its D normalises to 1


def test_aid_documented_defaults():
    """Every documented default of aid is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("aid") == {
        "alpha": 0.1,
        "mode": "instance",
        "feat_weight": 2.0,
        "logit_weight": 1.0,
        "temperature": 2.0,
        "adapter": "conv",
    }


def test_aid_two_images_two_classes_feat_and_logit_by_hand():
    """Two images (one GT, then two), two classes, teacher boxes on their GTs (IoU 1, so D_j = -log sig(z_t of the
    GT class)), non-zero student scores, logit_weight 2: instance weights in x.gt order, the logit term
    (4 sum_c KL(Bern(sig(t/2)) || Bern(sig(s/2))) per positive, weighted, / N_pos) and the feature term (channel-mean
    squared error of the adapted student on each box's one cell, weighted, / 3 cells; weight 2), written out here."""
    from yolo_kd.losses.base import KDInputs

    torch.manual_seed(8)
    zt = torch.tensor([[[0.3, -1.0], [2.0, 0.0]], [[-0.5, 1.0], [0.7, 1.5]]])  # (B, nc, A)
    zs = torch.tensor([[[1.0, 0.2], [-0.4, 0.9]], [[0.6, -1.2], [0.1, -0.3]]])
    ltrb = torch.full((2, 4, 2), 0.5)  # reg_max 1: 1-cell boxes centred on the anchors
    s, t = torch.randn(2, 3, 1, 2), torch.randn(2, 4, 1, 2)
    gt_px = torch.tensor([[0.0, 0.0, 8.0, 8.0], [8.0, 0.0, 16.0, 8.0]])
    fg = torch.tensor([[True, False], [True, True]])
    gt_idx = torch.tensor([[0, 0], [0, 1]])
    anchors, stride = torch.tensor([[0.5, 0.5], [1.5, 0.5]]), torch.full((2, 1), 8.0)
    batch = {"img": torch.zeros(2, 3, 8, 16), "batch_idx": torch.tensor([0.0, 1.0, 1.0]),
             "cls": torch.tensor([[1.0], [0.0], [1.0]]),
             "bboxes": torch.tensor([[0.25, 0.5, 0.5, 1.0], [0.25, 0.5, 0.5, 1.0], [0.75, 0.5, 0.5, 1.0]])}  # fmt: skip
    x = KDInputs(s_feats=[s], t_feats=[t], s_head={"scores": zs, "boxes": ltrb}, t_head={"scores": zt, "boxes": ltrb},
                 batch=batch, strides=[8.0],
                 assign=lambda side: (fg, gt_idx, gt_px[None].expand(2, 2, 4), anchors, stride))  # fmt: skip
    loss = build_loss("aid", {"aid": {"logit_weight": 2.0}}, [3], [4])
    out = loss(x)
    # instances in x.gt order: (image 0, class 1, anchor 0), (image 1, class 0, anchor 0), (image 1, class 1, anchor 1)
    d = [-math.log(sig(zt[0, 1, 0].item())), -math.log(sig(zt[1, 0, 0].item())), -math.log(sig(zt[1, 1, 1].item()))]
    w = [math.exp(-0.1 * v / (sum(d) / 3)) for v in d]
    assert loss.weights(x)[2].tolist() == pytest.approx(w, rel=1e-5)

    def bkl(tv: float, sv: float) -> float:
        p, q = sig(tv / 2), sig(sv / 2)
        return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))

    pos = [(0, 0, w[0]), (1, 0, w[1]), (1, 1, w[2])]
    logit = sum(wv * 4 * sum(bkl(zt[b, c, a].item(), zs[b, c, a].item()) for c in range(2)) for b, a, wv in pos) / 3
    assert out["aid_logit"].item() == pytest.approx(2.0 * logit, rel=1e-5)
    a = loss.adapt[0]
    fs = torch.einsum("oc,bchw->bohw", a.weight[:, :, 0, 0], s) + a.bias.view(1, -1, 1, 1)
    err = ((t - fs) ** 2).mean(1)[:, 0]  # (B, W)
    feat = (w[0] * err[0, 0] + w[1] * err[1, 0] + w[2] * err[1, 1]) / 3
    assert out["aid_feat"].item() == pytest.approx(2.0 * feat.item(), rel=1e-5)
