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


def test_mgd_golden_constant_generator_on_the_unfolded_path():
    """A generator whose output is its last bias b: alpha * sum (b - T)^2 / N, whatever the mask (2x2: not folded)."""
    from yolo_kd.losses.mgd import folds

    g = torch.Generator().manual_seed(4)
    s, t = torch.randn(2, 4, 2, 2, generator=g), torch.randn(2, 8, 2, 2, generator=g)
    loss = build_loss("mgd", {}, [4], [8])
    assert not folds(loss.align[0], s)
    for p in loss.generator.parameters():
        torch.nn.init.zeros_(p)
    torch.nn.init.constant_(loss.generator[0][2].bias, 0.5)
    torch.manual_seed(0)  # the mask drops some of the 8 cells: the masked student never reaches the output
    assert loss(peer_level(s, t))["mgd"].item() == pytest.approx(2e-5 * ((0.5 - t) ** 2).sum().item() / 2, rel=1e-5)


def test_mgd_folds_where_the_saved_work_is_four_times_the_folding():
    """The D7 rule: fold a C_s -> C_t aligner when (C_t - C_s) x cells >= 4 C_t C_s (4 -> 8: from 32 cells)."""
    from yolo_kd.losses.mgd import folds

    a = torch.nn.Conv2d(4, 8, 1)
    assert folds(a, torch.zeros(2, 4, 4, 4)) and not folds(a, torch.zeros(2, 4, 3, 5))  # 32 and 30 cells


def test_mgd_folded_aligner_equals_the_unfolded_generator():
    """Folding the aligner into the first conv gives G(M . A(s)) and the same gradients on every parameter and s."""
    from yolo_kd.losses.mgd import folds

    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(2, 4, 5, 5, generator=g), torch.randn(2, 8, 5, 5, generator=g)
    loss = build_loss("mgd", {}, [4], [8])
    assert folds(loss.align[0], s) and not folds(loss.align[0], s[:, :, :2, :2])  # 50 cells fold, 8 do not
    assert not folds(torch.nn.Identity(), s)
    keep = (torch.rand(2, 1, 5, 5, generator=g) > 0.5).float()
    a, gen = loss.align[0], loss.generator[0]

    def grads(fn):
        x = s.clone().requires_grad_(True)
        ((fn(x) - t) ** 2).sum().backward()
        out = [x.grad] + [p.grad.clone() for p in loss.parameters()]
        loss.zero_grad()
        return out

    ref = lambda x: gen(torch.nn.functional.conv2d(x, a.weight, a.bias) * keep)  # noqa: E731
    new = lambda x: loss.generate(0, x, keep)  # noqa: E731
    torch.testing.assert_close(new(s), ref(s), rtol=1e-5, atol=1e-5)
    for got, want in zip(grads(new), grads(ref), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_mgd_documented_defaults():
    """Every documented default of mgd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("mgd") == {"alpha": 2e-05, "ratio": 0.65}
