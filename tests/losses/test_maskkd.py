"""maskkd: golden values on tiny hand-made tensors (see yolo_kd/losses/maskkd.py), references written out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_kd.losses import build_loss
from yolo_kd.losses.base import Assignment, KDInputs


def bce(z: float, y: float) -> float:
    """Binary cross-entropy of logit ``z`` against target probability ``y``."""
    return -(y * math.log(1 / (1 + math.exp(-z))) + (1 - y) * math.log(1 - 1 / (1 + math.exp(-z))))


def inputs(seed: int = 0) -> tuple[KDInputs, dict]:
    """One 16x16 image, 3 anchors (positives 0 and 2), protos 4x4, 2 student / 3 teacher prototypes."""
    g = torch.Generator().manual_seed(seed)
    t = {
        "ps": torch.randn(1, 2, 4, 4, generator=g),
        "pt": torch.randn(1, 3, 4, 4, generator=g),
        "cs": torch.randn(1, 2, 3, generator=g),
        "ct": torch.randn(1, 3, 3, generator=g),
    }
    for v in t.values():
        v.requires_grad_(True)
    fg = torch.tensor([[True, False, True]])
    boxes = torch.tensor([[[0.0, 0.0, 8.0, 8.0], [0.0, 0.0, 16.0, 16.0], [4.0, 4.0, 16.0, 12.0]]])
    a = Assignment(fg, torch.zeros(1, 3, dtype=torch.long), boxes, torch.zeros(3, 2), torch.full((3, 1), 8.0))
    x = KDInputs(s_feats=[], t_feats=[], s_head={"proto": t["ps"], "mask_coefficient": t["cs"]},
                 t_head={"proto": t["pt"], "mask_coefficient": t["ct"]}, batch={"img": torch.zeros(1, 3, 16, 16)},
                 assign=lambda side: a if side == "teacher" else None)  # fmt: skip
    return x, t


def reference(t: dict, weight: float) -> float:
    """Written out: per positive, mean BCE over its box's proto pixels (box / 4), then mean over the 2 positives."""
    ps, pt, cs, ct = (v.detach() for v in (t["ps"], t["pt"], t["cs"], t["ct"]))
    pixels = {0: [(y, x) for y in (0, 1) for x in (0, 1)], 2: [(y, x) for y in (1, 2) for x in (1, 2, 3)]}
    total = 0.0
    for a, pix in pixels.items():
        acc = 0.0
        for y, x in pix:
            zs = sum(float(cs[0, m, a] * ps[0, m, y, x]) for m in range(2))
            zt = sum(float(ct[0, m, a] * pt[0, m, y, x]) for m in range(3))
            acc += bce(zs, 1 / (1 + math.exp(-zt)))
        total += acc / len(pix)
    return weight * total / 2


def test_maskkd_golden_and_default_weight():
    """The default weight is 7.5 (Ultralytics' box gain, as its mask loss); the value is the written-out formula."""
    x, t = inputs()
    loss = build_loss("maskkd", {}, [4], [4])
    assert loss.weight == 7.5
    assert loss(x)["maskkd"].item() == pytest.approx(reference(t, 7.5), rel=1e-5)
    x, t = inputs(seed=1)
    assert build_loss("maskkd", {"maskkd": {"weight": 2.0}}, [4], [4])(x)["maskkd"].item() == pytest.approx(
        reference(t, 2.0), rel=1e-5
    )


def test_maskkd_teacher_is_a_target_and_negatives_do_not_pull():
    """No gradient reaches the teacher's masks; the student's coefficients move at positives only."""
    x, t = inputs()
    build_loss("maskkd", {}, [4], [4])(x)["maskkd"].backward()
    assert t["pt"].grad is None and t["ct"].grad is None
    g = t["cs"].grad[0]
    assert g[:, 0].abs().sum() > 0 and g[:, 2].abs().sum() > 0 and g[:, 1].abs().sum() == 0
    assert t["ps"].grad.abs().sum() > 0


def test_maskkd_without_positives_is_zero():
    """No teacher positive: the term is 0 (finite), not NaN."""
    import dataclasses

    x, _ = inputs()
    a = x.assign("teacher")
    x = dataclasses.replace(x, assign=lambda side: a._replace(fg=torch.zeros_like(a.fg)))
    assert build_loss("maskkd", {}, [4], [4])(x)["maskkd"].item() == 0.0


def test_maskkd_documented_defaults():
    """Every documented default of maskkd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("maskkd") == {"weight": 7.5}
