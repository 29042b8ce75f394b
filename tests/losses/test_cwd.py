"""cwd: golden values on tiny hand-made tensors (see yolo_kd/losses/cwd.py)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.losses.inputs import peer_level
from yolo_kd.losses import build_loss
from yolo_kd.losses.cwd import channel_kl


def test_cwd_golden_and_temperature():
    """KL of per-channel spatial softmaxes: t -> [1/4, 3/4], s -> [1/2, 1/2]; tau^2 scaling; divide by N*C."""
    t = torch.tensor([0.0, math.log(3)]).view(1, 1, 1, 2)
    s = torch.zeros(1, 1, 1, 2)
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert channel_kl(s, t, 1.0).item() == pytest.approx(kl, rel=1e-6)
    assert channel_kl(s, 2 * t, 2.0).item() == pytest.approx(4 * kl, rel=1e-6)  # same distributions, x tau^2
    # both sides are divided by tau: student 2t at tau 2 -> [1/4, 3/4]; teacher 4t at tau 2 -> [1/10, 9/10]
    assert channel_kl(2 * t, 2 * t, 2.0).item() == pytest.approx(0.0, abs=1e-7)
    kl2 = 0.1 * math.log(0.1 / 0.25) + 0.9 * math.log(0.9 / 0.75)
    assert channel_kl(2 * t, 4 * t, 2.0).item() == pytest.approx(4 * kl2, rel=1e-5)  # float32 logs
    two = torch.cat([t, torch.zeros_like(t)], 1)  # second channel identical -> KL 0, mean over 2 channels
    assert channel_kl(torch.zeros_like(two), two, 1.0).item() == pytest.approx(kl / 2, rel=1e-6)
    loss = build_loss("cwd", {}, [1], [1])
    assert loss(peer_level(s, t))["cwd"].item() == pytest.approx(10 * kl, rel=1e-6)


def test_cwd_norm_makes_it_scale_invariant():
    """With norm=True (non-affine BN on both sides) scaling the teacher map changes nothing."""
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g)
    loss = build_loss("cwd", {"cwd": {"norm": True}}, [4], [4])
    a, b = loss(peer_level(s, t))["cwd"], loss(peer_level(s, 7 * t + 3))["cwd"]
    assert a.item() == pytest.approx(b.item(), rel=1e-4) and a > 0


def test_cwd_documented_defaults():
    """Every documented default of cwd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("cwd") == {"weight": 10.0, "tau": 1.0, "norm": False}
