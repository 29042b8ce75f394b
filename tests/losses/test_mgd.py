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
