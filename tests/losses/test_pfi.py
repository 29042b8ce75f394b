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


def test_pfi_weights_are_detached_by_default_and_levels_averaged():
    """The prediction-difference map is a weight (no gradient reaches the student scores with detach=True, the
    default) and the term is the mean over levels: three identical levels give one level's value."""
    from yolo_kd.losses.base import KDInputs

    torch.manual_seed(0)
    feats_s = [torch.randn(1, 2, 2, 2) for _ in range(3)]
    feats_t = [f.clone() + 1.0 for f in feats_s]
    scores = torch.randn(1, 1, 12, requires_grad=True)
    x = KDInputs(s_feats=feats_s, t_feats=feats_t, s_head={"scores": scores},
                 t_head={"scores": torch.zeros(1, 1, 12)}, batch={})  # fmt: skip
    loss = build_loss("pfi", {"pfi": {"weight": 1.0}}, [2, 2, 2], [2, 2, 2])
    for a in loss.adapt:  # identity adapters: each level's imitation error is 1 per cell
        torch.nn.init.zeros_(a.bias)
        with torch.no_grad():
            a.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    out = loss(x)["pfi"]
    w = scores.detach()[0, 0] ** 2  # logits=True: (t - s)^2 with t = 0, one class
    assert out.item() == pytest.approx(float(sum(w[i * 4 : i * 4 + 4].mean() for i in range(3)) / 3), rel=1e-5)
    out.backward()
    assert scores.grad is None


def test_pfi_golden_three_classes_two_levels_batch_two():
    """3 classes (P_dif is the mean over classes), two levels of different sizes, batch 2, a random adapter: the
    formula written out, level by level, then averaged over levels."""
    from yolo_kd.losses.base import KDInputs

    torch.manual_seed(3)
    s = [torch.randn(2, 2, 4, 4), torch.randn(2, 3, 2, 2)]
    t = [torch.randn(2, 3, 4, 4), torch.randn(2, 4, 2, 2)]
    ss, ts = torch.randn(2, 3, 20), torch.randn(2, 3, 20)
    loss = build_loss("pfi", {}, [2, 3], [3, 4])
    x = KDInputs(s_feats=s, t_feats=t, s_head={"scores": ss}, t_head={"scores": ts}, batch={})
    p = ((ts - ss) ** 2).sum(1) / 3  # (B, 20): mean over the 3 classes
    want = 0.0
    for i, (lo, hi, h) in enumerate([(0, 16, 4), (16, 20, 2)]):
        a = loss.adapt[i]
        fs = torch.einsum("oc,bchw->bohw", a.weight[:, :, 0, 0], s[i]) + a.bias.view(1, -1, 1, 1)
        f = ((t[i] - fs) ** 2).sum(1) / t[i].shape[1]  # (B, H, W)
        want = want + (p[:, lo:hi].reshape(2, h, h) * f).sum() / (2 * h * h)
    assert loss(x)["pfi"].item() == pytest.approx(9.0 * want.item() / 2, rel=1e-5)
