"""kptkd: golden values on tiny hand-made tensors (see yolo_kd/losses/kptkd.py), references written out by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from yolo_kd.losses import build_loss
from yolo_kd.losses.base import Assignment, KDInputs

ANCHORS = torch.tensor([[0.5, 0.5], [1.5, 0.5]])
STRIDE = torch.full((2, 1), 8.0)
BOX = [0.0, 0.0, 16.0, 8.0]  # anchor 0's object: area 128


def inputs(ndim: int = 3, head=None, seed: int = 0) -> tuple[KDInputs, torch.Tensor, torch.Tensor]:
    """One image, 2 anchors (anchor 0 positive), 2 keypoints of ``ndim`` values."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(1, 2 * ndim, 2, generator=g).requires_grad_(True)
    t = torch.randn(1, 2 * ndim, 2, generator=g).requires_grad_(True)
    head = head or SimpleNamespace(kpt_shape=(2, ndim))
    a = Assignment(torch.tensor([[True, False]]), torch.zeros(1, 2, dtype=torch.long), torch.tensor([[BOX, BOX]]),
                   ANCHORS, STRIDE)  # fmt: skip
    x = KDInputs(s_feats=[], t_feats=[], s_head={"kpts": s}, t_head={"kpts": t}, batch={},
                 assign=lambda side: a if side == "teacher" else None, s_detect=head, t_detect=head)  # fmt: skip
    return x, s, t


def reference(s, t, ndim: int, gain: float, off: float, pose_w: float = 12.0, kobj_w: float = 1.0) -> tuple:
    """Written out for anchor 0: decoded pixels, OKS-shaped error with sigma 1/K = 0.5, visibility weights, BCE."""
    s, t = s.detach()[0, :, 0], t.detach()[0, :, 0]
    sig, area, num, den, kobj = 0.5, 128.0, 0.0, 0.0, 0.0
    for k in range(2):
        px = [(float(r[k * ndim + i]) * gain + 0.5 + off) * 8 for r in (s, t) for i in (0, 1)]  # sx sy tx ty
        e = ((px[0] - px[2]) ** 2 + (px[1] - px[3]) ** 2) / ((2 * sig) ** 2 * (area + 1e-9) * 2)
        v = 1 / (1 + math.exp(-float(t[k * ndim + 2]))) if ndim == 3 else 1.0
        num, den = num + v * (1 - math.exp(-e)), den + v
        if ndim == 3:
            z = float(s[k * ndim + 2])
            kobj += -(v * math.log(1 / (1 + math.exp(-z))) + (1 - v) * math.log(1 - 1 / (1 + math.exp(-z)))) / 2
    return pose_w * num / den, kobj_w * kobj


def test_kptkd_golden_v8_decoding_and_defaults():
    """Defaults are Ultralytics' pose 12 and kobj 1 gains; v8 heads decode ``(r * 2 + anchor - 0.5) * stride``."""
    x, s, t = inputs()
    loss = build_loss("kptkd", {}, [4], [4])
    assert (loss.pose_weight, loss.kobj_weight) == (12.0, 1.0)
    out = loss(x)
    pose, kobj = reference(s, t, 3, 2.0, -0.5)
    assert out["kptkd_pose"].item() == pytest.approx(pose, rel=1e-5)
    assert out["kptkd_kobj"].item() == pytest.approx(kobj, rel=1e-5)


def test_kptkd_yolo26_decoding_weights_and_no_visibility():
    """Pose26 decodes ``(r + anchor) * stride``; weights scale the terms; [K, 2] keypoints weigh 1, kobj is 0."""
    head = type("Pose26", (), {"kpt_shape": (2, 3)})()
    x, s, t = inputs(head=head, seed=1)
    out = build_loss("kptkd", {"kptkd": {"pose_weight": 2.0, "kobj_weight": 3.0}}, [4], [4])(x)
    pose, kobj = reference(s, t, 3, 1.0, 0.0, 2.0, 3.0)
    assert out["kptkd_pose"].item() == pytest.approx(pose, rel=1e-5)
    assert out["kptkd_kobj"].item() == pytest.approx(kobj, rel=1e-5)
    x, s, t = inputs(ndim=2, seed=2)
    out = build_loss("kptkd", {}, [4], [4])(x)
    assert out["kptkd_pose"].item() == pytest.approx(reference(s, t, 2, 2.0, -0.5)[0], rel=1e-5)
    assert out["kptkd_kobj"].item() == 0.0


def test_kptkd_teacher_is_a_target_and_coco_sigmas():
    """No gradient reaches the teacher's keypoints, the student's move at the positive only; 17 keypoints use
    COCO's OKS sigmas (nose 0.026, ankles 0.089), others 1/K."""
    from yolo_kd.losses.kptkd import oks_sigmas

    x, s, t = inputs()
    sum(build_loss("kptkd", {}, [4], [4])(x).values()).backward()
    assert t.grad is None and s.grad[0, :, 0].abs().sum() > 0 and s.grad[0, :, 1].abs().sum() == 0
    sig = oks_sigmas(17, torch.device("cpu"))
    assert sig[0].item() == pytest.approx(0.026) and sig[-1].item() == pytest.approx(0.089)
    assert oks_sigmas(4, torch.device("cpu")).tolist() == [0.25] * 4
