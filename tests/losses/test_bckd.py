"""BCKD: binary-classification distillation and IoU-based localisation distillation against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_kd.losses import build_loss
from yolo_kd.losses.base import KDInputs


def sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def bce(z: float, p: float) -> float:
    return -(p * math.log(sig(z)) + (1 - p) * math.log(1 - sig(z)))


def inputs(s_scores, t_scores, s_boxes, t_boxes, fg) -> KDInputs:
    """Two anchors at stride 8 (centres (0.5, 0.5) and (1.5, 0.5) in cells), reg_max 1 (direct ltrb in cells)."""
    anchors = torch.tensor([[0.5, 0.5], [1.5, 0.5]])
    stride = torch.full((2, 1), 8.0)
    return KDInputs(
        s_feats=[torch.zeros(1, 1, 1, 2)], t_feats=[torch.zeros(1, 1, 1, 2)],
        s_head={"scores": s_scores, "boxes": s_boxes}, t_head={"scores": t_scores, "boxes": t_boxes},
        batch={}, strides=[8.0], assign=lambda side: (fg, None, None, anchors, stride),
    )  # fmt: skip


def test_bckd_golden():
    """cls = sum BCE(z_s, p_t) |p_t - p_s| / N_pos; box = sum_a max_c|p_t - p_s| (1 - GIoU) / N_pos (weights 1, 4)."""
    zs = torch.tensor([[[0.0, 1.0], [-1.0, 2.0]]])  # (B=1, nc=2, A=2)
    zt = torch.tensor([[[2.0, 1.0], [-3.0, 0.0]]])
    box_s = torch.tensor([[[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]])  # ltrb (1, 4, 2): 1x1-cell boxes
    box_t = torch.tensor([[[0.5, 0.5], [0.5, 0.5], [1.5, 0.5], [0.5, 0.5]]])  # anchor 0: 2 cells wide, anchor 1 same
    fg = torch.tensor([[True, False]])
    out = build_loss("bckd", {"bckd": {"weight": 1.0}}, [1], [1])(inputs(zs, zt, box_s, box_t, fg))  # paper weights
    cls = 0.0
    w = [0.0, 0.0]
    for c in range(2):
        for a in range(2):
            p_t, p_s = sig(zt[0, c, a].item()), sig(zs[0, c, a].item())
            cls += bce(zs[0, c, a].item(), p_t) * abs(p_t - p_s)
            w[a] = max(w[a], abs(p_t - p_s))
    # anchor 0: student box [0,0,1,1] cells, teacher [0,0,2,1]: IoU 1/2, enclosing = union -> GIoU 1/2
    assert out["bckd_cls"].item() == pytest.approx(cls, rel=1e-5)
    assert out["bckd_box"].item() == pytest.approx(4.0 * w[0] * 0.5, rel=1e-5)


def test_bckd_matched_student_costs_nothing_and_gradient_reaches_student_only():
    """Equal logits and boxes give zero loss; otherwise gradient flows into the student's head, not the teacher's."""
    z = torch.randn(1, 3, 2)
    b = torch.rand(1, 4, 2) + 0.2
    fg = torch.tensor([[True, True]])
    loss = build_loss("bckd", {}, [1], [1])
    zero = loss(inputs(z.clone(), z.clone(), b.clone(), b.clone(), fg))
    assert all(v.abs().item() < 1e-6 for v in zero.values())
    zs, bs = torch.randn(1, 3, 2, requires_grad=True), (torch.rand(1, 4, 2) + 0.2).requires_grad_(True)
    zt, bt = torch.randn(1, 3, 2, requires_grad=True), torch.rand(1, 4, 2) + 0.2
    out = loss(inputs(zs, zt, bs, bt, fg))
    sum(out.values()).backward()
    assert zs.grad.abs().sum() > 0 and bs.grad.abs().sum() > 0 and zt.grad is None


def test_bckd_trains_yolo26_student_from_v8_teacher():
    """Head-agnostic: a reg_max=1 YOLO26 student learns from a DFL (reg_max 16) v8 teacher; terms finite, > 0."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.bench.cost import batch_of
    from yolo_kd.model import KDModel

    torch.manual_seed(0)
    student, teacher = (DetectionModel("yolo26n.yaml", nc=3, verbose=False),
                        DetectionModel("yolov8s.yaml", nc=3, verbose=False))  # fmt: skip
    student.args = teacher.args = get_cfg(overrides={"imgsz": 64})
    model = KDModel(teacher, student, method="bckd").train()
    loss, items = model.loss(batch_of(2, 64, 3, "cpu"))
    loss.sum().backward()
    assert items["bckd_cls"] > 0 and items["bckd_box"] > 0 and torch.isfinite(loss).all()
    assert all(p.grad is None for p in model.teacher_model.parameters())


def test_bckd_one_to_one_branch_adds_the_same_terms():
    """With one-to-one heads present, each term is the one-to-many value plus the same formula on the o2o heads."""
    zs, zt = torch.randn(1, 2, 2), torch.randn(1, 2, 2)
    bs, bt = torch.rand(1, 4, 2) + 0.2, torch.rand(1, 4, 2) + 0.2
    zs2, zt2 = torch.randn(1, 2, 2), torch.randn(1, 2, 2)
    fg = torch.tensor([[True, False]])
    loss = build_loss("bckd", {}, [1], [1])
    one = loss(inputs(zs, zt, bs, bt, fg))
    other = loss(inputs(zs2, zt2, bt, bs, fg))
    from dataclasses import replace

    x = replace(
        inputs(zs, zt, bs, bt, fg), s_head_o2o={"scores": zs2, "boxes": bt}, t_head_o2o={"scores": zt2, "boxes": bs}
    )
    both = loss(x)
    for k in both:
        assert both[k].item() == pytest.approx(one[k].item() + other[k].item(), rel=1e-5)


def test_bckd_yolo26_pair_distills_both_branches():
    """A YOLO26 teacher and student: KDModel passes both one-to-one heads; the student's one-to-one head gets
    gradient from the KD terms alone (its inputs are detached, as in Ultralytics), the teacher none."""
    from tests.losses.inputs import kd_pair

    model, terms, x = kd_pair("bckd")
    assert x.s_head_o2o is not None and x.t_head_o2o is not None
    assert x.t_head_o2o["scores"].shape == x.s_head_o2o["scores"].shape
    sum(terms.values()).backward()
    o2o = [p.grad for p in model.student_model.model[-1].one2one_cv3.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in o2o)
    assert all(p.grad is None for p in model.teacher_model.parameters())


def test_bckd_documented_defaults():
    """Every documented default of bckd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("bckd") == {"weight": 20.0, "cls_weight": 1.0, "box_weight": 4.0, "beta": 1.0}


def test_bckd_default_weights_two_positives_and_a_cross_shaped_pair():
    """Default weights (20 x cls 1, 20 x box 4), N_pos = 2, and on anchor 1 a wide student box against a tall teacher
    box whose enclosing box (2 x 2 cells) exceeds their union (1.75): GIoU = 1/7 - 2.25/4, written out; the
    teacher's boxes get no gradient."""
    zs = torch.tensor([[[0.0, 1.0], [-1.0, 2.0]]])
    zt = torch.tensor([[[2.0, 1.0], [-3.0, 0.5]]])
    box_s = torch.tensor([[[0.5, 1.0], [0.5, 0.25], [0.5, 1.0], [0.5, 0.25]]])  # anchor 1: [0.5, 0.25, 2.5, 0.75]
    box_t = torch.tensor(
        [[[0.5, 0.25], [0.5, 1.0], [1.5, 0.25], [0.5, 1.0]]], requires_grad=True
    )  # [1.25,-.5,1.75,1.5]
    fg = torch.tensor([[True, True]])
    out = build_loss("bckd", {}, [1], [1])(inputs(zs, zt, box_s.requires_grad_(True), box_t, fg))
    cls, w = 0.0, [0.0, 0.0]
    for c in range(2):
        for a in range(2):
            p_t, p_s = sig(zt[0, c, a].item()), sig(zs[0, c, a].item())
            cls += bce(zs[0, c, a].item(), p_t) * abs(p_t - p_s)
            w[a] = max(w[a], abs(p_t - p_s))
    giou_loss = [1 - 0.5, 1 - (1 / 7 - (4 - 1.75) / 4)]
    assert out["bckd_cls"].item() == pytest.approx(20 * cls / 2, rel=1e-5)
    assert out["bckd_box"].item() == pytest.approx(80 * (w[0] * giou_loss[0] + w[1] * giou_loss[1]) / 2, rel=1e-5)
    out["bckd_box"].backward()
    assert box_t.grad is None and box_s.grad.abs().sum() > 0


def test_bckd_term_weights_multiply_the_overall_weight():
    """``cls_weight`` and ``box_weight`` scale the overall ``weight``: (weight 3, cls 2, box 5) gives 6x and 15x the
    unweighted terms of (weight 1, cls 1, box 1)."""
    zs, zt = torch.randn(1, 2, 2), torch.randn(1, 2, 2)
    bs, bt = torch.rand(1, 4, 2) + 0.2, torch.rand(1, 4, 2) + 0.2
    fg = torch.tensor([[True, True]])
    one = build_loss("bckd", {"bckd": {"weight": 1.0, "box_weight": 1.0}}, [1], [1])(inputs(zs, zt, bs, bt, fg))
    w = build_loss("bckd", {"bckd": {"weight": 3.0, "cls_weight": 2.0, "box_weight": 5.0}}, [1], [1])
    out = w(inputs(zs, zt, bs, bt, fg))
    assert out["bckd_cls"].item() == pytest.approx(6 * one["bckd_cls"].item(), rel=1e-5)
    assert out["bckd_box"].item() == pytest.approx(15 * one["bckd_box"].item(), rel=1e-5)
