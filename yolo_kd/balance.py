"""``kd_balance=auto``: each KD term's weight follows a target share of the detection loss's gradient.

In the spirit of RT-DETRv4's gradient-norm-ratio balancing: every ``every`` training steps, the gradient norm of each
(unweighted) KD term and of the detection loss is measured on the student's shared parameters (backbone and neck,
which every term reaches); the term's multiplier moves toward ``share * |g_det| / |g_term|``, smoothed in log space
and bounded, so a term pulls with about ``share`` times the detection gradient whatever its scale. Under DDP the
norms are averaged over ranks first, so every rank applies the same multipliers. The multipliers are a buffer: they
are saved in checkpoints and continue on resume.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

BOUNDS = (1e-2, 1e2)  # multipliers stay within these


def grad_norm(loss: Tensor, params: list[Tensor]) -> Tensor:
    """L2 norm of ``d loss / d params`` (graph kept); 0 for a loss without gradient."""
    total = torch.zeros((), device=loss.device)
    if loss.requires_grad:
        for g in torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True):
            if g is not None:
                total = total + (g.float() ** 2).sum()
    return total.sqrt()


class Balancer(nn.Module):
    """Multipliers of the KD terms ``names`` and their update rule.

    Args:
        names (tuple[str, ...]): KD term names, in the order the method returns them.
        share (float | dict[str, float]): Target gradient share per term (one value for all, or per name).
        every (int): Measure and update every ``every`` training steps.
        smooth (float): Weight of a new measurement in the log-space running average (0..1].
    """

    def __init__(self, names: tuple[str, ...], share: float | dict = 1.0, every: int = 20, smooth: float = 0.3) -> None:
        """Start every multiplier at 1."""
        super().__init__()
        self.names = tuple(names)
        shares = share if isinstance(share, dict) else dict.fromkeys(self.names, float(share))
        self.target = [float(shares.get(n, 1.0)) for n in self.names]
        self.every, self.smooth = max(int(every), 1), float(smooth)
        self.register_buffer("log_mult", torch.zeros(len(self.names)))
        self.steps = 0

    def multipliers(self) -> dict[str, float]:
        """Current multiplier per term."""
        return {n: math.exp(float(v)) for n, v in zip(self.names, self.log_mult)}

    def due(self) -> bool:
        """Count a training step; True when this one should be measured."""
        self.steps += 1
        return self.steps % self.every == 1 or self.every == 1

    def update(self, det_norm: float, term_norms: dict[str, float]) -> None:
        """Move each multiplier toward ``target * det_norm / term_norm`` (terms without gradient keep theirs)."""
        lo, hi = (math.log(b) for b in BOUNDS)
        for i, n in enumerate(self.names):
            g = term_norms.get(n, 0.0)
            if g <= 0 or det_norm <= 0 or not math.isfinite(g):
                continue
            want = math.log(self.target[i] * det_norm / g)
            new = (1 - self.smooth) * float(self.log_mult[i]) + self.smooth * want
            self.log_mult[i] = min(max(new, lo), hi)

    def measure(self, det: Tensor, terms: dict[str, Tensor], params: list[Tensor], bs: int) -> None:
        """Measure gradient norms on ``params`` (averaged over DDP ranks) and update the multipliers."""
        import torch.distributed as dist

        losses = [det.sum(), *(terms[n] * bs for n in self.names)]
        norms = torch.stack([grad_norm(loss, params) for loss in losses]).detach()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(norms)
            norms /= dist.get_world_size()
        vals = norms.tolist()
        self.update(vals[0], dict(zip(self.names, vals[1:])))

    def apply(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        """Terms times their multipliers (names not balanced pass unchanged)."""
        m = dict(zip(self.names, self.log_mult.exp()))
        return {k: v * m[k].to(v.dtype) if k in m else v for k, v in terms.items()}
