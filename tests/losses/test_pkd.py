"""pkd: golden values on tiny hand-made tensors (see yolo_kd/losses/pkd.py)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.losses.inputs import peer_level
from yolo_kd.losses import build_loss
from yolo_kd.losses.pkd import standardise


def test_pkd_standardise_and_pearson_identity():
    """Per-channel standardisation over (N, H, W); loss = weight * (n-1)/n * mean_c (1 - r_c)."""
    f = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    z = standardise(f)
    assert torch.allclose(z.flatten(), (torch.tensor([1.0, 2, 3, 4]) - 2.5) / math.sqrt(5 / 3), atol=1e-5)
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(3, 2, 4, 4, generator=g), torch.randn(3, 2, 4, 4, generator=g)
    n = 3 * 16
    r = [torch.corrcoef(torch.stack([s[:, c].flatten(), t[:, c].flatten()]))[0, 1] for c in range(2)]
    want = 10 * (n - 1) / n * sum(1 - rc for rc in r) / 2
    assert build_loss("pkd", {}, [2], [2])(peer_level(s, t))["pkd"].item() == pytest.approx(want.item(), rel=1e-4)
    assert build_loss("pkd", {}, [2], [2])(peer_level(s, 5 * s + 1))["pkd"].item() == pytest.approx(0, abs=1e-6)


def test_pkd_documented_defaults():
    """Every documented default of pkd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("pkd") == {"weight": 10.0}
