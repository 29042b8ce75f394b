"""gkd: golden values on tiny hand-made tensors (see yolo_kd/losses/gkd.py and gradmaps.py)."""

from __future__ import annotations

import pytest
import torch

from yolo_kd.errors import KDError
from yolo_kd.losses import build_loss
from yolo_kd.losses.base import Assignment, KDInputs, TeacherView
from yolo_kd.losses.gradmaps import (
    box_gate,
    cell_map,
    degenerate,
    grad_cam,
    score_target,
    uniform_if_degenerate,
    weighted_imitation,
)


def test_grad_cam_golden():
    """w_k = mean grad (Eq. 1), M = ReLU(sum_k w_k A_k), min-max per image."""
    a = torch.tensor([[[[1.0, 2.0], [3.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]]])  # (1, 2, 2, 2)
    g = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]], [[-2.0, -2.0], [-2.0, -2.0]]]])  # w = (1, -2)
    raw = torch.relu(a[0, 0] - 2 * a[0, 1])  # [[1, 0], [1, 0]]
    assert torch.allclose(grad_cam(a, g)[0], (raw - raw.min()) / (raw.max() - raw.min()))
    assert grad_cam(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)).abs().sum() == 0  # constant map -> zeros


def test_grad_cam_weights_match_autograd_on_toy_head():
    """Gradient part: for a linear toy head, dL/dA_k is the head weight, so w_k equals it exactly."""
    torch.manual_seed(0)
    head = torch.nn.Conv2d(3, 1, 1, bias=False)
    feat = torch.rand(2, 3, 4, 4).requires_grad_(True)
    loss = head(feat).sum() / 16
    (grad,) = torch.autograd.grad(loss, feat)
    w = grad.mean((2, 3))
    assert torch.allclose(w, head.weight.view(1, 3).expand(2, 3) / 16, atol=1e-7)
    cam = grad_cam(feat.detach(), grad)
    raw = torch.relu((head.weight.view(1, 3, 1, 1) / 16 * feat.detach()).sum(1))
    flat = raw.flatten(1)
    ref = (raw - flat.min(1).values[:, None, None]) / (flat.max(1).values - flat.min(1).values)[:, None, None]
    assert torch.allclose(cam, ref, atol=1e-6)


def test_weighted_imitation_golden():
    """sum M * sum_c (t-s)^2 / (C * sum M)."""
    s, t = torch.zeros(1, 2, 1, 2), torch.tensor([[[[1.0, 2.0]], [[0.0, 2.0]]]])
    m = torch.tensor([[[1.0, 0.5]]])
    expected = (1.0 * (1 + 0) + 0.5 * (4 + 4)) / (2 * 1.5)
    assert weighted_imitation(s, t, m).item() == pytest.approx(expected)


def test_cell_map_golden():
    """|sum_k g_ijk A_ijk| per cell (no pooling of the gradient), divided by the per-image max."""
    a = torch.tensor([[[[1.0, 2.0], [3.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]]])
    g = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]], [[2.0, 1.0], [-1.0, 3.0]]]])
    raw = torch.tensor([[1 * 1 + 0 * 2, -1 * 2 + 1 * 1], [0.5 * 3 - 1 * 1, 0 + 3 * 1]]).abs()  # [[1, 1], [.5, 3]]
    assert torch.allclose(cell_map(a, g)[0], raw / 3)
    assert cell_map(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).abs().sum() == 0  # no gradient -> zeros


def test_box_shaped_response_is_selected_by_cell_map_not_pooled():
    """A teacher whose loss gradient opposes object evidence (the P3 failure) still gets a cell map on the box.

    Channel 0 fires inside the box, channel 1 on the background; the loss gradient is negative on channel 0 inside
    the box (an under-confident positive) and small positive on channel 1 everywhere. Grad-CAM's pooled weights then
    keep the background; the per-cell map puts its mass inside the box, far above the box's area share (chance).
    """
    h = w = 8
    box = torch.zeros(h, w, dtype=torch.bool)
    box[2:4, 2:4] = True  # 4 of 64 cells: chance = 1/16
    a = torch.stack([box.float() * 3.0, (~box).float()])[None]
    g = torch.stack([box.float() * -1.0, torch.full((h, w), 0.1)])[None]
    mass = lambda m: float(m[0][box].sum() / m[0].sum())  # noqa: E731
    assert mass(cell_map(a, g)) > 0.5 > 4 / 64
    assert mass(grad_cam(a, g)) < 4 / 64


def test_score_target_golden():
    """Sum over positives of the logit of the assigned object's class; objects indexed per image in order."""
    logits = torch.arange(2 * 3 * 4, dtype=torch.float).view(2, 3, 4)  # logits[b, c, a] = 12 b + 4 c + a
    fg = torch.tensor([[True, False, True, False], [False, True, False, False]])
    gt_idx = torch.tensor([[0, 0, 1, 0], [0, 0, 0, 0]])
    batch = {  # image 1's object first in the batch, then image 0's two objects (classes 2 then 1)
        "img": torch.zeros(2, 3, 32, 32),
        "batch_idx": torch.tensor([1.0, 0.0, 0.0]),
        "cls": torch.tensor([[0.0], [2.0], [1.0]]),
        "bboxes": torch.full((3, 4), 0.5),
    }
    a = Assignment(fg, gt_idx, torch.zeros(2, 4, 4), torch.zeros(4, 2), torch.ones(4, 1))
    expected = (0 + 4 * 2 + 0) + (0 + 4 * 1 + 2) + (12 + 4 * 0 + 1)  # (b0, a0: obj 0 cls 2), (b0, a2: cls 1), (b1, a1)
    assert score_target(logits, a, batch).item() == expected


def test_score_map_selects_a_box_shaped_response():
    """Grad-CAM of the score target on a toy linear head: the channel that fires in the box is weighted up, so the
    map's mass lies in the box far above chance, where the same Grad-CAM of a loss that opposes object evidence
    (the P3 failure of issue 15) keeps the background."""
    h = w = 8
    box = torch.zeros(h, w, dtype=torch.bool)
    box[2:4, 2:4] = True  # 4 of 64 cells: chance = 1/16
    feat = torch.stack([box.float() * 3.0, (~box).float()])[None].requires_grad_(True)  # (1, 2, 8, 8)
    head = torch.tensor([1.0, 0.2]).view(1, 2, 1, 1)  # class-0 logit = A_0 + 0.2 A_1
    logits = (head * feat).sum(1).view(1, 1, -1)
    fg = box.view(1, -1)  # the box cells are the positives
    a = Assignment(fg, torch.zeros(1, h * w, dtype=torch.long), torch.zeros(1, h * w, 4), torch.zeros(h * w, 2),
                   torch.ones(h * w, 1))  # fmt: skip
    batch = {"img": torch.zeros(1, 3, 64, 64), "batch_idx": torch.zeros(1), "cls": torch.zeros(1, 1),
             "bboxes": torch.tensor([[0.375, 0.375, 0.25, 0.25]])}  # fmt: skip
    (g,) = torch.autograd.grad(score_target(logits, a, batch), feat)
    m = grad_cam(feat.detach(), g)[0]
    assert float(m[box].sum() / m.sum()) > 0.9 > 4 / 64
    loss_grad = torch.stack([box.float() * -1.0, torch.full((h, w), 0.1)])[None]  # an under-confident positive
    m_loss = grad_cam(feat.detach(), loss_grad)[0]
    assert float(m_loss[box].sum() / m_loss.sum()) < 4 / 64


def test_gkd_score_map_reads_teacher_logits_and_assignment():
    """map=score differentiates x.teacher_logits on detached teacher maps through the teacher's assignment only."""
    loss = build_loss("gkd", {"gkd": {"map": "score", "gate": False}}, [2], [2])
    t = [torch.rand(1, 2, 2, 2)]
    fg = torch.tensor([[True, False, False, False]])
    a = Assignment(fg, torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, 4), torch.zeros(4, 2), torch.ones(4, 1))
    x = KDInputs(
        s_feats=[torch.rand(1, 2, 2, 2, requires_grad=True)],
        t_feats=t,
        s_head={},
        t_head={},
        batch={
            "img": torch.zeros(1, 3, 16, 16),
            "batch_idx": torch.zeros(1),
            "cls": torch.zeros(1, 1),
            "bboxes": torch.tensor([[0.25, 0.25, 0.5, 0.5]]),
        },  # fmt: skip
        teacher=TeacherView(
            logits=lambda f: (f[0] * torch.tensor([2.0, -1.0]).view(1, 2, 1, 1)).sum(1, True).flatten(2)
        ),
        assign=lambda side: a if side == "teacher" else None,
    )
    m = loss.teacher_maps(x)[0]
    raw = torch.relu((2 * t[0][:, 0] - t[0][:, 1]) / 4)  # the gradient sits on one of 4 cells: w = (2, -1) / 4
    ref = (raw - raw.min()) / (raw.max() - raw.min())
    assert torch.allclose(m, ref, atol=1e-6)
    with pytest.raises(KDError, match="map=score"):
        build_loss("gkd", {"gkd": {"map": "score", "targets": "teacher"}}, [2], [2])


def test_degenerate_maps_fall_back_to_uniform_and_are_counted():
    """All-zero or constant maps are flagged; gkd replaces them by uniform weights and counts them per level."""
    m = torch.stack([torch.zeros(2, 2), torch.full((2, 2), 0.3), torch.tensor([[0.0, 1.0], [0.0, 0.0]])])
    assert degenerate(m).tolist() == [True, True, False]
    loss = build_loss("gkd", {}, [2, 2], [2, 2])
    out = uniform_if_degenerate([m, m[2:]], loss.degenerate, loss.prefix)
    assert torch.equal(out[0][0], torch.ones(2, 2)) and torch.equal(out[0][2], m[2]) and loss.degenerate == [2, 0]


def test_box_gate_zeroes_off_box_cells():
    """The gate keeps the map on cells overlapping the image's boxes; an image without boxes is all zero."""
    m = [torch.ones(2, 4, 4)]
    out = box_gate(m, torch.tensor([[8.0, 8.0, 16.0, 24.0]]), torch.tensor([0]), [8.0])[0]
    expected = torch.zeros(4, 4)
    expected[1:3, 1] = 1
    assert torch.equal(out[0], expected) and out[1].abs().sum() == 0


def test_gkd_teacher_maps_use_teacher_task_loss_gradient():
    """The teacher map comes from autograd of teacher_task_loss on detached teacher maps (pooled: the paper's)."""
    loss = build_loss("gkd", {"gkd": {"map": "pooled"}}, [2], [2])
    t = [torch.rand(1, 2, 3, 3)]
    x = KDInputs(
        s_feats=[torch.rand(1, 2, 3, 3, requires_grad=True)],
        t_feats=t,
        s_head={},
        t_head={},
        batch={},
        teacher=TeacherView(task_loss=lambda f, b, **_: (f[0][:, 0] * 2 - f[0][:, 1]).sum()),
    )
    m = loss.teacher_maps(x)[0]
    raw = torch.relu(2 * 1 * t[0][:, 0] - 1 * t[0][:, 1])  # grads constant: w = (2, -1)
    ref = (raw - raw.min()) / (raw.max() - raw.min())
    assert torch.allclose(m, ref, atol=1e-6)
    assert t[0].grad is None and not t[0].requires_grad
    assert not m.requires_grad and m.grad_fn is None  # a constant, for the imitation and the CAM term alike


def test_gkd_imitation_weights_are_constants_even_from_student_maps():
    """source=student: the maps are differentiable (the CAM term needs it), the imitation weights made of them are
    not, so the imitation's gradient is (s - t) weighted, never through the weights."""
    loss = build_loss("gkd", {"gkd": {"source": "student", "gate": False}}, [2], [2])
    f = torch.rand(1, 2, 3, 3, requires_grad=True)
    maps = [cell_map(f, torch.ones_like(f))]
    assert maps[0].requires_grad
    w = loss.weights(KDInputs(s_feats=[f], t_feats=[f.detach()], s_head={}, t_head={}, batch={}), maps)
    assert not w[0].requires_grad and torch.allclose(w[0], maps[0].detach())


def test_gkd_cam_term_is_differentiable_for_student():
    """With cam_weight > 0 the |M_T - M_S| term sends gradient into the student maps (unlike the released code)."""
    loss = build_loss("gkd", {"gkd": {"cam_weight": 1.0, "adapter": "conv", "gate": False}}, [2], [2])
    torch.nn.init.zeros_(loss.adapt[0].weight)
    s = [torch.rand(1, 2, 3, 3, requires_grad=True)]
    x = KDInputs(
        s_feats=s,
        t_feats=[torch.rand(1, 2, 3, 3)],
        s_head={},
        t_head={},
        batch={},
        task_loss=(s[0][:, 0] ** 2).sum(),
        teacher=TeacherView(task_loss=lambda f, b, **_: (f[0] ** 2).sum()),
    )
    out = loss(x)
    (g,) = torch.autograd.grad(out["gkd_cam"], s)
    assert g.abs().sum() > 0


@pytest.mark.train  # inspects a real teacher on real images (~40 s)
def test_default_gkd_map_selects_objects_on_a_real_teacher(tmp_path, shared_assets):
    """A real COCO-pretrained teacher (../shared yolo11n) on real COCO128 training batches: ungated, the default (cell)
    map puts its P3 mass inside the boxes far above chance and the paper's pooled Grad-CAM does not get close; with
    the default gate all of it lies on box cells; the score-target Grad-CAM is above chance and the pooled map too."""
    import shutil

    from yolo_kd.tools.inspect import run_inspect

    src = shared_assets / "datasets" / "coco128"
    if not (src / "data.yaml").exists() or not (shared_assets / "weights" / "yolo11n.pt").exists():
        pytest.skip("../shared/assets (coco128, yolo11n.pt) not available")
    data = tmp_path / "coco128"
    shutil.copytree(src, data)  # Ultralytics writes label caches next to the labels
    rep = {}
    maps = (("cell", "cell", False), ("pooled", "pooled", False), ("gated", "cell", True), ("score", "score", False))
    for name, m, gate in maps:
        rep[name] = run_inspect(teacher=str(shared_assets / "weights" / "yolo11n.pt"), data=str(data / "data.yaml"),
                                method="gkd", batches=2, imgsz=320, batch=8, out=str(tmp_path), gkd_map=m,
                                gkd_gate=gate, device="cpu", seed=0)  # fmt: skip
    p3 = {m: rep[m]["mass"]["gkd/P3"] for m in rep}
    box = {m: sum(x["box"] for x in v) / len(v) for m, v in p3.items()}
    chance = sum(x["chance"] for x in p3["cell"]) / len(p3["cell"])
    assert box["cell"] > 2 * chance and box["cell"] > box["pooled"] + 0.1, (box, chance)
    assert box["gated"] > 0.99, box
    assert box["score"] > chance + 0.05 and box["score"] > box["pooled"] + 0.05, (box, chance)  # 0.50 / 0.37 / 0.37


def test_gkd_documented_defaults():
    """Every documented default of gkd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("gkd") == {
        "weight": 12.0,
        "cam_weight": 0.0,
        "map": "cell",
        "gate": True,
        "source": "teacher",
        "targets": "labels",
        "conf": 0.3,
        "max_det": 10,
        "adapter": "mlp",
    }


def test_maps_treat_the_gradient_as_a_constant_and_degenerate_threshold_is_1e6():
    """Grad-CAM's channel weights and the cell map's gradient factor are constants (no gradient reaches ``grad``);
    a map whose range is 1.2e-6 is not degenerate (the guard is 1e-6), one of 0.8e-6 is."""
    feat = torch.rand(1, 2, 3, 3, requires_grad=True)
    grad = torch.rand(1, 2, 3, 3, requires_grad=True)
    (grad_cam(feat, grad).sum() + cell_map(feat, grad).sum()).backward()
    assert grad.grad is None and feat.grad is not None
    m = torch.zeros(2, 2, 2)
    m[0, 0, 0], m[1, 0, 0] = 1.2e-6, 0.8e-6
    assert degenerate(m).tolist() == [False, True]


def test_pseudo_targets_are_normalised_xywh_of_the_teacher_detections():
    """Teacher detections above conf become Ultralytics targets: centre/size normalised by the image, teacher ids."""
    from yolo_kd.losses.gradmaps import pseudo_targets

    pred = torch.zeros(1, 4 + 2, 3)  # (B, 4 + nc, A): xywh in pixels, then class probabilities
    pred[0, :4, 0] = torch.tensor([40.0, 20.0, 16.0, 8.0])
    pred[0, 5, 0] = 0.9  # class 1
    pred[0, :4, 1] = torch.tensor([10.0, 50.0, 4.0, 12.0])
    pred[0, 4, 1] = 0.2  # below conf 0.3
    out = pseudo_targets(pred, (64, 80), conf=0.3, max_det=10)
    assert torch.allclose(out["bboxes"], torch.tensor([[40 / 80, 20 / 64, 16 / 80, 8 / 64]]), atol=1e-6)
    assert out["cls"].tolist() == [[1.0]] and out["batch_idx"].tolist() == [0.0]


def test_gkd_default_weight_and_cam_term_by_hand():
    """Default weight 12 on the imitation, and the CAM term cam_weight * sum_l mean |M_T - M_S| (ungated, conv
    adapters zeroed so the student's adapted map is 0); with both weights 0 the term is an exact, finite zero."""
    torch.manual_seed(5)
    s = [torch.rand(1, 2, 3, 3, requires_grad=True)]
    t = [torch.rand(1, 2, 3, 3)]
    x = KDInputs(s_feats=s, t_feats=t, s_head={}, t_head={}, batch={}, task_loss=(s[0][:, 0] ** 2).sum(),
                 teacher=TeacherView(task_loss=lambda f, b, **_: (f[0][:, 0] * 3 - f[0][:, 1]).sum()))  # fmt: skip
    loss = build_loss("gkd", {"gkd": {"cam_weight": 0.5, "gate": False, "adapter": "conv"}}, [2], [2])
    torch.nn.init.zeros_(loss.adapt[0].weight)
    torch.nn.init.zeros_(loss.adapt[0].bias)
    out = loss(x)
    mt = (torch.tensor([3.0, -1.0]).view(1, 2, 1, 1) * t[0]).sum(1).abs()
    mt = mt / mt.max()
    g_s = torch.zeros_like(s[0])
    g_s[:, 0] = 2 * s[0].detach()[:, 0]
    ms = (g_s * s[0].detach()).sum(1).abs()
    ms = ms / ms.max()
    imit = (mt[:, None] * t[0] ** 2).sum() / (2 * mt.sum())
    assert out["gkd"].item() == pytest.approx(12.0 * imit.item(), rel=1e-5)
    assert out["gkd_cam"].item() == pytest.approx(0.5 * (mt - ms).abs().mean().item(), rel=1e-5)
    off = build_loss("gkd", {"gkd": {"weight": 0.0, "cam_weight": 0.0}}, [2], [2])(x)
    assert list(off) == ["gkd"] and off["gkd"].item() == 0.0
