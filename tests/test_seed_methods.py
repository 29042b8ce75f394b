"""AID, RM, PFI, structured KD and TAR against hand-computed values on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_kd.losses import build_loss
from yolo_kd.losses.base import KDInputs
from yolo_kd.losses.functional import binary_kl, gt_table
from yolo_kd.losses.rm import segment_log_softmax
from yolo_kd.losses.skd import NonLocal


def one_level(
    s_scores: list[float],
    t_scores: list[float],
    fg: list[bool],
    gt_idx: list[int] | None = None,
    s_box: list[list[float]] | None = None,
    t_box: list[list[float]] | None = None,
    gts: list[list[float]] | None = None,
    progress: float = 0.0,
    c: int = 2,
) -> KDInputs:
    """One image, one 1 x A level at stride 8, nc = 1, reg_max = 1 heads (ltrb in cells), GTs of class 0."""
    a = len(s_scores)
    gts = gts or [[0.0, 0.0, 8.0, 8.0]]
    boxes = torch.tensor(gts)
    img = torch.zeros(1, 3, 8, 8 * a)
    xywh = torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1) / torch.tensor([8 * a, 8] * 2)
    batch = {"img": img, "batch_idx": torch.zeros(len(gts)), "cls": torch.zeros(len(gts), 1), "bboxes": xywh}
    j = torch.tensor([gt_idx or [0] * a])
    target = boxes[j[0]][None]
    anchors = torch.stack([torch.arange(a) + 0.5, torch.full((a,), 0.5)], 1)
    ltrb = [[0.5, 0.5, 0.5, 0.5]] * a
    head = lambda sc, bx: {"scores": torch.tensor([[sc]]), "boxes": torch.tensor(bx or ltrb).T[None]}  # noqa: E731
    s_head, t_head = head(s_scores, s_box), head(t_scores, t_box)
    s_head["scores"].requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    return KDInputs(
        s_feats=[torch.randn(1, c, 1, a, generator=g).requires_grad_(True)],
        t_feats=[torch.randn(1, c, 1, a, generator=g)],
        s_head=s_head,
        t_head=t_head,
        batch=batch,
        strides=[8.0],
        progress=progress,
        assign=lambda side: (torch.tensor([fg]), j, target, anchors, torch.full((a, 1), 8.0)),
    )


def kl_of_softmax(t: list[float], s: list[float]) -> float:
    """KL(softmax(t) || softmax(s)) by hand."""
    pt = [math.exp(v) / sum(math.exp(u) for u in t) for v in t]
    ps = [math.exp(v) / sum(math.exp(u) for u in s) for v in s]
    return sum(p * math.log(p / q) for p, q in zip(pt, ps))


def sig(v: float) -> float:
    """Logistic function."""
    return 1 / (1 + math.exp(-v))


def test_helpers_gt_table_and_segment_softmax():
    """GT slots follow Ultralytics' per-image order; the segment log-softmax normalises within each group."""
    table = gt_table(torch.tensor([1.0, 0.0, 1.0]), torch.tensor([5, 6, 7]), 2)
    assert table.tolist() == [[6, 0], [5, 7]]
    ls = segment_log_softmax(torch.tensor([0.0, math.log(3), 1.0]), torch.tensor([0, 0, 1]), 2)
    assert torch.allclose(ls.exp(), torch.tensor([0.25, 0.75, 1.0]))


def test_rm_golden_one_instance_and_single_anchor():
    """KL of the anchors' GT-class score softmaxes per instance; one-anchor instances give 0; no sorting."""
    s, t = [0.0, 1.0, -1.0], [2.0, -1.0, 0.5]
    x = one_level(s, t, [True, True, False])
    want = 240.0 * kl_of_softmax([sig(v) for v in t[:2]], [sig(v) for v in s[:2]])
    assert build_loss("rm", {}, [2], [2])(x)["rm"].item() == pytest.approx(want, rel=1e-5)
    sorted_ = 240.0 * kl_of_softmax(sorted(sig(v) for v in t[:2]), sorted(sig(v) for v in s[:2]))
    assert not math.isclose(want, sorted_, rel_tol=1e-3)  # sorting would change the value
    two = one_level(s, t, [True, True, True], gt_idx=[0, 0, 1], gts=[[0.0, 0.0, 8.0, 8.0], [16.0, 0.0, 24.0, 8.0]])
    assert build_loss("rm", {}, [2], [2])(two)["rm"].item() == pytest.approx(want / 2, rel=1e-5)  # mean over 2
    none = build_loss("rm", {}, [2], [2])(one_level(s, t, [False] * 3))["rm"]
    assert none.item() == 0.0 and none.requires_grad


@pytest.mark.parametrize("logits", [True, False])
def test_pfi_golden(logits):
    """weight * mean_loc P_dif * mean_c (F_t - F_s)^2 with an identity adapter; P_dif on logits (default, as the
    peer's code) or on probabilities."""
    x = one_level([0.0, 1.0], [2.0, 1.0], [True, False])
    loss = build_loss("pfi", {"pfi": {"logits": logits}}, [2], [2])
    torch.nn.init.zeros_(loss.adapt[0].bias)
    with torch.no_grad():
        loss.adapt[0].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    f = (x.t_feats[0] - x.s_feats[0].detach()).pow(2).mean(1)[0, 0]  # (A,)
    p = torch.tensor([(2.0 - 0.0) ** 2 if logits else (sig(2.0) - sig(0.0)) ** 2, 0.0])
    assert loss(x)["pfi"].item() == pytest.approx(9.0 * (p * f).mean().item(), rel=1e-5)


def test_aid_weights_and_logit_term():
    """Teacher per-anchor loss (1 - IoU) + BCE(z, IoU), instance mean, normalised by the batch mean, exp(-alpha D)."""
    gts = [[0.0, 0.0, 8.0, 8.0], [8.0, 0.0, 24.0, 8.0]]
    x = one_level([0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [True, True, True], gt_idx=[0, 1, 1], gts=gts)
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


def test_skd_golden_uniform_maps_and_identity_nonlocal():
    """Uniform maps -> masks 1: am = sqrt(C H W); zeroed attention adapters -> at = ||mean_hw T|| + ||mean_c T||."""
    t = torch.ones(1, 2, 2, 2)
    s = 2 * torch.ones(1, 2, 2, 2)
    loss = build_loss("skd", {}, [2], [2])
    torch.nn.init.zeros_(loss.adapt[0].bias)
    with torch.no_grad():
        loss.adapt[0].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        for p in [*loss.ch[0].parameters(), *loss.sp[0].parameters()]:
            p.zero_()
    terms = loss.level_terms(0, s, t)
    assert terms["am"].item() == pytest.approx(math.sqrt(8.0), rel=1e-5)
    assert terms["at"].item() == pytest.approx(math.sqrt(2) + math.sqrt(4), rel=1e-5)
    nl = NonLocal(4, 2)
    x = torch.randn(2, 4, 4, 4)
    assert torch.equal(nl(x), x)  # zero-initialised output projection: identity at start


def test_tar_masks_and_decay():
    """cls KD only where the teacher's GT-class probability is higher, box only where its IoU is higher; x (1-p)."""
    t_box = [[0.5, 0.5, 0.5, 0.5]] * 3  # boxes (0,0,8,8), (8,0,16,8), ...
    s_box = [[0.5, 0.5, 1.5, 0.5]] * 3  # boxes (0,0,16,8), (8,0,24,8), ...
    gts = [[0.0, 0.0, 8.0, 8.0], [8.0, 0.0, 24.0, 8.0]]
    x = one_level([0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [True, True, False], [0, 1, 0], s_box, t_box, gts, progress=0.5)
    out = build_loss("tar", {}, [2], [2])(x)
    kl0 = binary_kl(torch.tensor(0.0) / 2, torch.tensor(1.0) / 2).item() * 4  # anchor 0 only: teacher 0.73 > 0.5
    assert out["tar_cls"].item() == pytest.approx(0.5 * kl0 / 2, rel=1e-5)
    # anchor 0 (GT 0): teacher IoU 1 > student 0.5, L1 of decoded boxes = 1 cell; anchor 1 (GT 1): student IoU 1
    assert out["tar_box"].item() == pytest.approx(0.5 * 0.25 * 1.0 / 2, rel=1e-5)
    assert build_loss("tar", {}, [2], [2])(one_level([0.0], [1.0], [True], progress=1.0))["tar_cls"].item() == 0.0
