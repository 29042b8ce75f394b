"""mgd: golden values on tiny hand-made tensors (see yolo_kd/losses/mgd.py)."""

from __future__ import annotations

import pytest
import torch

from tests.losses.inputs import peer_level
from yolo_kd.errors import KDError
from yolo_kd.losses import build_loss


def test_mgd_golden_mask_and_generator():
    """Zero generator -> alpha * sum T^2 / N; the mask drops ~ratio of positions, shared by all channels."""
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(2, 4, 5, 5, generator=g), torch.randn(2, 8, 5, 5, generator=g)
    loss = build_loss("mgd", {}, [4], [8])
    for p in loss.generator.parameters():
        torch.nn.init.zeros_(p)
    assert loss(peer_level(s, t))["mgd"].item() == pytest.approx(2e-5 * (t**2).sum().item() / 2, rel=1e-5)
    torch.manual_seed(0)
    m = loss.mask(torch.zeros(4, 3, 100, 100))
    assert m.shape == (4, 1, 100, 100) and abs(1 - m.mean().item() - 0.65) < 0.01
    with pytest.raises(KDError, match="mgd_ratio=1.0"):
        build_loss("mgd", {"mgd": {"ratio": 1.0}}, [4], [8])


def test_mgd_generators_follow_a_bf16_teacher():
    """bf16 teacher maps: the generators compute in bf16 (close to FP32), the loss stays FP32 and the gradient reaches
    the student; FP32 teacher maps: FP32 generators."""
    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(2, 8, 6, 6, generator=g), torch.randn(2, 8, 6, 6, generator=g)
    loss = build_loss("mgd", {}, [8], [8])
    seen = []
    loss.generator[0][0].register_forward_hook(lambda mod, i, o: seen.append(o.dtype))
    values = []
    for tm in (t, t.bfloat16()):
        sx = s.clone().requires_grad_(True)
        torch.manual_seed(0)  # the same mask both times
        out = loss(peer_level(sx, tm))["mgd"]
        out.backward()
        assert out.dtype is torch.float32 and sx.grad is not None and sx.grad.abs().sum() > 0
        values.append(out.item())
    assert seen == [torch.float32, torch.bfloat16]
    assert values[1] == pytest.approx(values[0], rel=2e-2) and values[1] != values[0]
