"""GKD importance maps and BMFI box masks / terms against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_kd.losses import build_loss
from yolo_kd.losses.base import KDInputs
from yolo_kd.losses.bmfi import gaussian_box_mask
from yolo_kd.losses.functional import background_mask, spatial_channel_attention
from yolo_kd.losses.gkd import box_gate, cell_map, degenerate, grad_cam, weighted_imitation


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


def test_degenerate_maps_fall_back_to_uniform_and_are_counted():
    """All-zero or constant maps are flagged; gkd replaces them by uniform weights and counts them per level."""
    m = torch.stack([torch.zeros(2, 2), torch.full((2, 2), 0.3), torch.tensor([[0.0, 1.0], [0.0, 0.0]])])
    assert degenerate(m).tolist() == [True, True, False]
    loss = build_loss("gkd", {}, [2, 2], [2, 2])
    out = loss.fallback([m, m[2:]])
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
        teacher_task_loss=lambda f, b: (f[0][:, 0] * 2 - f[0][:, 1]).sum(),
    )
    m = loss.teacher_maps(x)[0]
    raw = torch.relu(2 * 1 * t[0][:, 0] - 1 * t[0][:, 1])  # grads constant: w = (2, -1)
    ref = (raw - raw.min()) / (raw.max() - raw.min())
    assert torch.allclose(m, ref, atol=1e-6)
    assert t[0].grad is None and not t[0].requires_grad


def test_gkd_cam_term_is_differentiable_for_student():
    """With cam_weight > 0 the |M_T - M_S| term sends gradient into the student maps (unlike the released code)."""
    loss = build_loss("gkd", {"gkd": {"cam_weight": 1.0, "adapter": "conv"}}, [2], [2])
    torch.nn.init.zeros_(loss.adapt[0].weight)
    s = [torch.rand(1, 2, 3, 3, requires_grad=True)]
    x = KDInputs(
        s_feats=s,
        t_feats=[torch.rand(1, 2, 3, 3)],
        s_head={},
        t_head={},
        batch={},
        task_loss=(s[0][:, 0] ** 2).sum(),
        teacher_task_loss=lambda f, b: (f[0] ** 2).sum(),
    )
    out = loss(x)
    (g,) = torch.autograd.grad(out["gkd_cam"], s)
    assert g.abs().sum() > 0


def test_gkd_paper_is_the_cam_l1_alone():
    """gkdpaper = 0.6 * mean |M_T - M_S| of pooled Grad-CAM maps, with no imitation term and no adapters."""
    loss = build_loss("gkdpaper", {}, [2], [2])
    assert loss.names == ("gkdpaper_cam",) and loss.adapt is None and loss.map == "pooled"
    torch.manual_seed(0)
    s = [torch.rand(1, 2, 3, 3, requires_grad=True)]
    t = [torch.rand(1, 2, 3, 3)]
    x = KDInputs(s_feats=s, t_feats=t, s_head={}, t_head={}, batch={}, task_loss=(s[0][:, 0] * 3 - s[0][:, 1]).sum(),
                 teacher_task_loss=lambda f, b: (f[0][:, 1] - f[0][:, 0]).sum())  # fmt: skip
    m_t = grad_cam(t[0], torch.stack([-torch.ones(3, 3), torch.ones(3, 3)])[None])
    m_s = grad_cam(s[0].detach(), torch.stack([3 * torch.ones(3, 3), -torch.ones(3, 3)])[None])
    assert loss(x)["gkdpaper_cam"].item() == pytest.approx(0.6 * (m_t - m_s).abs().mean().item(), rel=1e-5)


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
    loss = build_loss(
        "bmfi", {"bmfi": {"alpha": 1.0, "beta": 1.0, "gamma": 1.0, "lam": 1.0, "adapter": "conv"}}, [1], [1]
    )
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


@pytest.mark.parametrize(
    "method", ["gkd", "bmfi", "gkd+bmfi", "cwd+mgd+fgd+pkd", "aid+rm+pfi+skd+tar", "crosskd+bckd+gkdpaper"]
)
def test_mixed_precision_losses_finite(method):
    """Under autocast (bf16 on CPU, as AMP would run the student) every term and gradient stays finite, and the
    GKD maps are still computed in FP32 by the teacher head."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.bench.cost import batch_of
    from yolo_kd.model import KDModel

    torch.manual_seed(0)
    student, teacher = (
        DetectionModel("yolov8n.yaml", nc=3, verbose=False),
        DetectionModel("yolov8s.yaml", nc=3, verbose=False),
    )
    student.args = teacher.args = get_cfg(overrides={"imgsz": 64})
    model = KDModel(teacher, student, method=method).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, items = model.loss(batch_of(2, 64, 3, "cpu"))
    loss.sum().backward()
    kd = {k: v for k, v in items.items() if k not in {"box_loss", "cls_loss", "dfl_loss"}}
    assert torch.isfinite(loss).all() and kd and all(torch.isfinite(v) for v in kd.values())
    assert sum(float(v) for v in kd.values()) > 0
    grads = [p.grad for p in model.student_model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in model.teacher_model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="AMP (fp16 GradScaler) needs a CUDA GPU")
@pytest.mark.parametrize("method", ["gkd+bmfi", "crosskd", "bckd"])
def test_amp_training_on_gpu(train_args, method):
    """A real AMP epoch on a GPU: every logged KD term is finite."""
    from yolo_kd.trainer import KDTrainer

    trainer = KDTrainer(overrides={**train_args, "method": method, "amp": True, "device": 0})
    trainer.train()
    assert trainer.amp and all(torch.isfinite(torch.as_tensor(v)).all() for v in trainer.tloss.values())


def test_default_gkd_map_selects_objects_on_a_real_teacher(tmp_path):
    """A real COCO-pretrained teacher (../shared yolo11n) on real COCO128 training batches: the default (cell) map puts
    its P3 mass inside the boxes far above chance; the paper's pooled Grad-CAM does not get close."""
    import shutil

    from tests.conftest import SHARED
    from yolo_kd.tools.inspect import run_inspect

    src = SHARED / "datasets" / "coco128"
    if not (src / "data.yaml").exists() or not (SHARED / "weights" / "yolo11n.pt").exists():
        pytest.skip("../shared/assets (coco128, yolo11n.pt) not available")
    data = tmp_path / "coco128"
    shutil.copytree(src, data)  # Ultralytics writes label caches next to the labels
    rep = {}
    for m in ("cell", "pooled"):
        rep[m] = run_inspect(teacher=str(SHARED / "weights" / "yolo11n.pt"), data=str(data / "data.yaml"),
                             method="gkd", batches=2, imgsz=320, batch=8, out=str(tmp_path), gkd_map=m, device="cpu",
                             seed=0)  # fmt: skip
    p3 = {m: rep[m]["mass"]["gkd/P3"] for m in rep}
    box = {m: sum(x["box"] for x in v) / len(v) for m, v in p3.items()}
    chance = sum(x["chance"] for x in p3["cell"]) / len(p3["cell"])
    assert box["cell"] > 2 * chance and box["cell"] > box["pooled"] + 0.1, (box, chance)
