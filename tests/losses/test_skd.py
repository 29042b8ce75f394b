"""skd: golden values on tiny hand-made tensors (see yolo_kd/losses/skd.py)."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_kd.losses import build_loss
from yolo_kd.losses.skd import NonLocal


def test_skd_golden_uniform_maps_and_identity_nonlocal():
    """Uniform maps -> masks 1: am = sqrt(C H W); zeroed attention adapters -> at = ||mean_hw T|| + ||mean_c T||."""
    t = torch.ones(1, 2, 2, 2)
    s = 2 * torch.ones(1, 2, 2, 2)
    loss = build_loss("skd", {}, [2], [2])
    torch.nn.init.zeros_(loss.adapt[0].bias)
    with torch.no_grad():
        loss.adapt[0].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        for p in [*loss.ch[0].parameters(), *loss.sp[0].parameters()]:
            p.zero_()
    terms = loss.level_terms(0, s, t)
    assert terms["am"].item() == pytest.approx(math.sqrt(8.0), rel=1e-5)
    assert terms["at"].item() == pytest.approx(math.sqrt(2) + math.sqrt(4), rel=1e-5)
    nl = NonLocal(4, 2)
    x = torch.randn(2, 4, 4, 4)
    assert torch.equal(nl(x), x)  # zero-initialised output projection: identity at start


def test_skd_documented_defaults():
    """Every documented default of skd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("skd") == {"alpha": 0.0014, "gamma": 0.08, "beta": 0.0014, "tau": 0.1}


def _att(f: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial (B, H, W) and channel (B, C) attention written out: HW softmax(mean_c|F|/T), C softmax(mean_hw|F|/T)."""
    b, c, h, w = f.shape
    a = f.abs()
    sp = torch.exp(a.mean(1) / tau)
    sp = h * w * sp / sp.sum((1, 2), keepdim=True)
    ch = torch.exp(a.mean((2, 3)) / tau)
    return sp, c * ch / ch.sum(1, keepdim=True)


def _nonlocal(nl: NonLocal, x: torch.Tensor) -> torch.Tensor:
    """The embedded-Gaussian block by hand: x + W (softmax(theta^T phi) g), keys/values max-pooled by ``sub``."""

    def conv(m, f):
        return torch.einsum("oc,bchw->bohw", m.weight[:, :, 0, 0], f) + m.bias.view(1, -1, 1, 1)

    b, _, h, w = x.shape
    pool = (lambda f: torch.nn.functional.max_pool2d(f, nl.sub)) if min(h, w) >= nl.sub > 1 else (lambda f: f)
    q = conv(nl.theta, x).flatten(2)  # (B, i, HW)
    k, v = pool(conv(nl.phi, x)).flatten(2), pool(conv(nl.g, x)).flatten(2)  # (B, i, hw)
    e = torch.exp(torch.einsum("bip,biq->bpq", q, k))
    y = torch.einsum("bpq,biq->bip", e / e.sum(-1, keepdim=True), v).reshape(b, -1, h, w)
    return x + conv(nl.out, y)


def test_skd_golden_two_levels_random_adapters_by_hand():
    """Two levels, batch 2, 3/4 channels, random adapters and non-zero non-local outputs: every term and its weight
    against the formulas written out here (masks from both attentions, per-image norms, sums over levels)."""
    torch.manual_seed(0)
    sc, tc = [3, 4], [4, 5]
    loss = build_loss("skd", {}, sc, tc)
    for blocks in (loss.nl_s, loss.nl_t):
        for nl in blocks:
            torch.nn.init.normal_(nl.out.weight, std=0.3)
            torch.nn.init.normal_(nl.out.bias, std=0.1)
    s = [torch.randn(2, 3, 8, 8), torch.randn(2, 4, 4, 4)]
    t = [torch.randn(2, 4, 8, 8), torch.randn(2, 5, 4, 4)]
    assert [nl.sub for nl in loss.nl_s] == [4, 2] and [nl.sub for nl in loss.nl_t] == [4, 2]
    want = {"am": 0.0, "at": 0.0, "nl": 0.0}
    for i in range(2):
        fs = torch.nn.functional.conv2d(s[i], loss.adapt[i].weight, loss.adapt[i].bias)
        (st, ct), (ss, cs) = _att(t[i], 0.1), _att(fs, 0.1)
        m = ((st + ss) / 2)[:, None] * ((ct + cs) / 2)[:, :, None, None]
        want["am"] += torch.sqrt((m * (t[i] - fs) ** 2).sum((1, 2, 3)) + 1e-12).mean()
        ch = s[i].mean((2, 3)) @ loss.ch[i].weight.T + loss.ch[i].bias
        sp = torch.nn.functional.conv2d(s[i].mean(1, keepdim=True), loss.sp[i].weight, loss.sp[i].bias, padding=1)
        want["at"] += torch.linalg.vector_norm(t[i].mean((2, 3)) - ch, dim=1).mean()
        want["at"] += torch.linalg.vector_norm((t[i].mean(1, keepdim=True) - sp).flatten(1), dim=1).mean()
        g = torch.nn.functional.conv2d(_nonlocal(loss.nl_s[i], s[i]), loss.nl_g[i].weight, loss.nl_g[i].bias)
        want["nl"] += torch.linalg.vector_norm((_nonlocal(loss.nl_t[i], t[i]) - g).flatten(1), dim=1).mean()
        assert torch.allclose(loss.nl_s[i](s[i]), _nonlocal(loss.nl_s[i], s[i]), atol=1e-5)
    from yolo_kd.losses.base import KDInputs

    got = loss(KDInputs(s_feats=s, t_feats=t, s_head={}, t_head={}, batch={}))
    w = {"am": 1.4e-3, "at": 0.08, "nl": 1.4e-3}
    for k in want:
        assert got[f"skd_{k}"].item() == pytest.approx(w[k] * want[k].item(), rel=1e-4), k


def test_skd_am_is_finite_where_student_equals_teacher_and_masks_carry_no_gradient():
    """The 1e-12 under am's square root keeps it finite (and its gradient defined) at a perfect match; the masks are
    detached: the student's gradient is the masked squared error's alone."""
    t = torch.randn(1, 2, 4, 4)
    loss = build_loss("skd", {}, [2], [2])
    with torch.no_grad():
        loss.adapt[0].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        loss.adapt[0].bias.zero_()
    s = t.clone().requires_grad_(True)
    am = loss.level_terms(0, s, t)["am"]
    assert am.item() == pytest.approx(1e-6, rel=1e-3) and torch.isfinite(am)
    s2 = (t + 0.5 * torch.randn_like(t)).requires_grad_(True)
    loss.level_terms(0, s2, t)["am"].backward()
    (sa, ca), (ss, cs) = _att(t, 0.1), _att(s2.detach(), 0.1)
    m = ((sa + ss) / 2)[:, None] * ((ca + cs) / 2)[:, :, None, None]
    e = (m * (t - s2.detach()) ** 2).sum()
    want = -m * (t - s2.detach()) / torch.sqrt(e + 1e-12)  # d sqrt(sum m (t - s)^2) / ds with m constant
    assert torch.allclose(s2.grad, want, atol=1e-6)
