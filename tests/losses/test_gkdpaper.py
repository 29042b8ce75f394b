"""gkdpaper: golden values on tiny hand-made tensors (see yolo_kd/losses/gkdpaper.py)."""

from __future__ import annotations

import pytest
import torch

from yolo_kd.losses import build_loss
from yolo_kd.losses.base import KDInputs, TeacherView
from yolo_kd.losses.gradmaps import grad_cam


def test_gkd_paper_is_the_cam_l1_alone():
    """gkdpaper = 0.6 * mean |M_T - M_S| of pooled Grad-CAM maps, with no imitation term and no adapters."""
    loss = build_loss("gkdpaper", {}, [2], [2])
    assert loss.names == ("gkdpaper_cam",) and loss.adapt is None and loss.map == "pooled"
    torch.manual_seed(0)
    s = [torch.rand(1, 2, 3, 3, requires_grad=True)]
    t = [torch.rand(1, 2, 3, 3)]
    x = KDInputs(s_feats=s, t_feats=t, s_head={}, t_head={}, batch={}, task_loss=(s[0][:, 0] * 3 - s[0][:, 1]).sum(),
                 teacher=TeacherView(task_loss=lambda f, b, **_: (f[0][:, 1] - f[0][:, 0]).sum()))  # fmt: skip
    m_t = grad_cam(t[0], torch.stack([-torch.ones(3, 3), torch.ones(3, 3)])[None])
    m_s = grad_cam(s[0].detach(), torch.stack([3 * torch.ones(3, 3), -torch.ones(3, 3)])[None])
    assert loss(x)["gkdpaper_cam"].item() == pytest.approx(0.6 * (m_t - m_s).abs().mean().item(), rel=1e-5)


def test_gkdpaper_documented_defaults():
    """Every documented default of gkdpaper is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("gkdpaper") == {"cam_weight": 0.6, "map": "pooled"}
