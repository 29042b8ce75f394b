"""kptkd: golden values on tiny hand-made tensors (see yolo_kd/losses/kptkd.py), references written out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_kd.losses import build_loss
from yolo_kd.losses.base import Assignment, KDInputs, TeacherView

ANCHORS = torch.tensor([[0.5, 0.5], [1.5, 0.5]])
STRIDE = torch.full((2, 1), 8.0)
FG = torch.tensor([[True, False], [False, True]])  # one positive per image: anchor 0, then anchor 1
BOXES = torch.tensor([[[2.0, 1.0, 18.0, 9.0]] * 2, [[4.0, 2.0, 12.0, 14.0]] * 2])  # areas 128 and 96, off the origin
K = 4  # sigma 1/K = 0.25


def head(ndim: int = 3, kind: str = "Pose"):
    """A stand-in head: only its class name (decoding family) and kpt_shape are read."""
    return type(kind, (), {"kpt_shape": (K, ndim)})()


def inputs(ndim: int = 3, s_head=None, t_head=None, seed: int = 0) -> tuple[KDInputs, torch.Tensor, torch.Tensor]:
    """Two images, 2 anchors each (one positive per image), K keypoints of ``ndim`` values."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(2, K * ndim, 2, generator=g).requires_grad_(True)
    t = torch.randn(2, K * ndim, 2, generator=g).requires_grad_(True)
    a = Assignment(FG, torch.zeros(2, 2, dtype=torch.long), BOXES, ANCHORS, STRIDE)
    x = KDInputs(s_feats=[], t_feats=[], s_head={"kpts": s}, t_head={"kpts": t}, batch={},
                 assign=lambda side: a if side == "teacher" else None,
                 s_detect=s_head or head(ndim), teacher=TeacherView(t_head or head(ndim)))  # fmt: skip
    return x, s, t


def reference(s, t, ndim: int, fam_s=(2.0, -0.5), fam_t=(2.0, -0.5), pose_w: float = 12.0, kobj_w: float = 1.0):
    """Written out per positive: decoded pixels, OKS-shaped error (sigma 0.25), visibility weights, BCE; means."""
    s, t = s.detach(), t.detach()
    pose_sum, kobj_sum, pos = 0.0, 0.0, [(0, 0), (1, 1)]
    for b, a in pos:
        x0, y0, x1, y1 = BOXES[b, a].tolist()
        area, num, den, kobj = (x1 - x0) * (y1 - y0), 0.0, 0.0, 0.0
        for k in range(K):
            ps = [(float(s[b, k * ndim + i, a]) * fam_s[0] + float(ANCHORS[a, i]) + fam_s[1]) * 8 for i in (0, 1)]
            pt = [(float(t[b, k * ndim + i, a]) * fam_t[0] + float(ANCHORS[a, i]) + fam_t[1]) * 8 for i in (0, 1)]
            d2 = (ps[0] - pt[0]) ** 2 + (ps[1] - pt[1]) ** 2
            e = d2 / ((2 * 0.25) ** 2 * (area + 1e-9) * 2)
            v = 1 / (1 + math.exp(-float(t[b, k * ndim + 2, a]))) if ndim == 3 else 1.0
            num, den = num + v * (1 - math.exp(-e)), den + v
            if ndim == 3:
                z = float(s[b, k * ndim + 2, a])
                kobj += -(v * math.log(1 / (1 + math.exp(-z))) + (1 - v) * math.log(1 - 1 / (1 + math.exp(-z)))) / K
        pose_sum, kobj_sum = pose_sum + num / den, kobj_sum + kobj
    return pose_w * pose_sum / len(pos), kobj_w * kobj_sum / len(pos)


def test_kptkd_golden_v8_decoding_and_defaults():
    """Defaults are Ultralytics' pose 12 and kobj 1 gains; v8 heads decode ``(r * 2 + anchor - 0.5) * stride``."""
    x, s, t = inputs()
    loss = build_loss("kptkd", {}, [4], [4])
    assert (loss.pose_weight, loss.kobj_weight) == (12.0, 1.0)
    out = loss(x)
    pose, kobj = reference(s, t, 3)
    assert out["kptkd_pose"].item() == pytest.approx(pose, rel=1e-5)
    assert out["kptkd_kobj"].item() == pytest.approx(kobj, rel=1e-5)


def test_kptkd_yolo26_decoding_weights_and_no_visibility():
    """Pose26 decodes ``(r + anchor) * stride``; weights scale the terms; [K, 2] keypoints weigh 1, kobj is 0."""
    x, s, t = inputs(s_head=head(3, "Pose26"), t_head=head(3, "Pose26"), seed=1)
    out = build_loss("kptkd", {"kptkd": {"pose_weight": 2.0, "kobj_weight": 3.0}}, [4], [4])(x)
    pose, kobj = reference(s, t, 3, (1.0, 0.0), (1.0, 0.0), 2.0, 3.0)
    assert out["kptkd_pose"].item() == pytest.approx(pose, rel=1e-5)
    assert out["kptkd_kobj"].item() == pytest.approx(kobj, rel=1e-5)
    x, s, t = inputs(ndim=2, seed=2)
    out = build_loss("kptkd", {}, [4], [4])(x)
    assert out["kptkd_pose"].item() == pytest.approx(reference(s, t, 2)[0], rel=1e-5)
    assert out["kptkd_kobj"].item() == 0.0


def test_kptkd_decode_places_keypoints_at_their_anchor_in_pixels():
    """``decode`` alone (the loss's differences cancel the anchor): raw 0 and 1 at anchor (1.5, 0.5), stride 8, give
    v8 ``(0 * 2 + 1.5 - 0.5) * 8 = 8`` / ``(1 * 2 + 0.5 - 0.5) * 8 = 16`` and Pose26 ``(0 + 1.5) * 8 = 12`` /
    ``(1 + 0.5) * 8 = 12``."""
    from yolo_kd.losses.kptkd import decode

    raw = torch.zeros(1, K * 3, 2)
    raw[0, 1::3] = 1.0  # every keypoint's y
    v8, v26 = decode(raw, head(3, "Pose"), ANCHORS, STRIDE), decode(raw, head(3, "Pose26"), ANCHORS, STRIDE)
    assert v8.shape == (1, 2, K, 2)
    assert v8[0, 1].tolist() == [[8.0, 16.0]] * K and v26[0, 1].tolist() == [[12.0, 12.0]] * K


def test_kptkd_mixed_families_decode_each_head_its_own_way():
    """A YOLOv8 student against a YOLO26 teacher: each side decodes with its own gain and offset."""
    x, s, t = inputs(s_head=head(3, "Pose"), t_head=head(3, "Pose26"), seed=3)
    out = build_loss("kptkd", {}, [4], [4])(x)
    assert out["kptkd_pose"].item() == pytest.approx(reference(s, t, 3, (2.0, -0.5), (1.0, 0.0))[0], rel=1e-5)


def test_kptkd_teacher_is_a_target_and_coco_sigmas():
    """No gradient reaches the teacher's keypoints, the student's move at the positive only; 17 keypoints use
    COCO's OKS sigmas (nose 0.026, ankles 0.089), others 1/K."""
    from yolo_kd.losses.kptkd import oks_sigmas

    x, s, t = inputs()
    sum(build_loss("kptkd", {}, [4], [4])(x).values()).backward()
    assert t.grad is None and s.grad[0, :, 0].abs().sum() > 0 and s.grad[0, :, 1].abs().sum() == 0
    assert s.grad[1, :, 1].abs().sum() > 0 and s.grad[1, :, 0].abs().sum() == 0
    sig = oks_sigmas(17, torch.device("cpu"))
    assert sig[0].item() == pytest.approx(0.026) and sig[-1].item() == pytest.approx(0.089)
    assert oks_sigmas(4, torch.device("cpu")).tolist() == [0.25] * 4


def test_kptkd_documented_defaults():
    """Every documented default of kptkd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("kptkd") == {"pose_weight": 12.0, "kobj_weight": 1.0}
