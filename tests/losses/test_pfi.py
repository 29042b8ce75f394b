"""pfi: golden values on tiny hand-made tensors (see yolo_kd/losses/pfi.py)."""

from __future__ import annotations

import pytest
import torch

from tests.losses.inputs import seed_level, sig
from yolo_kd.losses import build_loss


@pytest.mark.parametrize("logits", [True, False])
def test_pfi_golden(logits):
    """weight * mean_loc P_dif * mean_c (F_t - F_s)^2 with an identity adapter; P_dif on logits (default, as the
    peer's code) or on probabilities."""
    x = seed_level([0.0, 1.0], [2.0, 1.0], [True, False])
    loss = build_loss("pfi", {"pfi": {"logits": logits}}, [2], [2])
    torch.nn.init.zeros_(loss.adapt[0].bias)
    with torch.no_grad():
        loss.adapt[0].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    f = (x.t_feats[0] - x.s_feats[0].detach()).pow(2).mean(1)[0, 0]  # (A,)
    p = torch.tensor([(2.0 - 0.0) ** 2 if logits else (sig(2.0) - sig(0.0)) ** 2, 0.0])
    assert loss(x)["pfi"].item() == pytest.approx(9.0 * (p * f).mean().item(), rel=1e-5)


def test_pfi_documented_defaults():
    """Every documented default of pfi is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("pfi") == {"weight": 9.0, "detach": True, "logits": True, "adapter": "conv"}
