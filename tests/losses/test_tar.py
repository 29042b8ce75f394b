"""tar: golden values on tiny hand-made tensors (see yolo_kd/losses/tar.py)."""

from __future__ import annotations

import pytest
import torch

from tests.losses.inputs import seed_level
from yolo_kd.losses import build_loss
from yolo_kd.losses.functional import binary_kl


def test_tar_masks_and_decay():
    """cls KD only where the teacher's GT-class probability is higher, box only where its IoU is higher; x (1-p)."""
    t_box = [[0.5, 0.5, 0.5, 0.5]] * 3  # boxes (0,0,8,8), (8,0,16,8), ...
    s_box = [[0.5, 0.5, 1.5, 0.5]] * 3  # boxes (0,0,16,8), (8,0,24,8), ...
    gts = [[0.0, 0.0, 8.0, 8.0], [8.0, 0.0, 24.0, 8.0]]
    x = seed_level([0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [True, True, False], [0, 1, 0], s_box, t_box, gts, progress=0.5)
    out = build_loss("tar", {}, [2], [2])(x)
    kl0 = binary_kl(torch.tensor(0.0) / 2, torch.tensor(1.0) / 2).item() * 4  # anchor 0 only: teacher 0.73 > 0.5
    assert out["tar_cls"].item() == pytest.approx(0.5 * kl0 / 2, rel=1e-5)
    # anchor 0 (GT 0): teacher IoU 1 > student 0.5, L1 of decoded boxes = 1 cell; anchor 1 (GT 1): student IoU 1
    assert out["tar_box"].item() == pytest.approx(0.5 * 0.25 * 1.0 / 2, rel=1e-5)
    assert build_loss("tar", {}, [2], [2])(seed_level([0.0], [1.0], [True], progress=1.0))["tar_cls"].item() == 0.0


def test_tar_documented_defaults():
    """Every documented default of tar is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("tar") == {"feat_weight": 2.0, "cls_weight": 1.0, "box_weight": 0.25, "final": 0.0}


def test_tar_cls_sums_the_bernoulli_kl_over_classes_at_temperature_two():
    """Two classes: the cls term is 4 * sum_c KL(Bern(sig(t_c / 2)) || Bern(sig(s_c / 2))) (written out here) on the
    anchors where the teacher's GT-class (class 0) score beats the student's, divided by the positives."""
    import math

    x = seed_level([0.0, 0.0], [0.0, 0.0], [True, True], progress=0.0)
    s = torch.tensor([[[-1.0, 2.0], [0.5, -0.3]]])  # (1, 2 classes, 2 anchors)
    t = torch.tensor([[[1.5, 1.0], [-2.0, 0.7]]])  # anchor 0: teacher beats student on class 0; anchor 1: not
    x.s_head["scores"], x.t_head["scores"] = s, t
    loss = build_loss("tar", {"tar": {"box_weight": 0.0, "feat_weight": 0.0}}, [2], [2])

    def kl(tv: float, sv: float) -> float:
        p, q = 1 / (1 + math.exp(-tv / 2)), 1 / (1 + math.exp(-sv / 2))
        return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))

    want = 4 * (kl(1.5, -1.0) + kl(-2.0, 0.5)) / 2
    assert loss(x)["tar_cls"].item() == pytest.approx(want, rel=1e-5)


def test_tar_feat_imitates_only_the_cells_of_boxes_the_teacher_fits_better():
    """feat = 2 (1 - (1 - final) p) sum over the cells of teacher-better boxes of mean_c (F^T - phi(F^S))^2 / cells.

    GT 0 covers cell 0 and the teacher fits it better (IoU 1 vs 0.5); GT 1 covers cells 1-2 and the student fits it
    better: only cell 0 is imitated, and the other box cells do not enter the count. Three channels.
    """
    t_box = [[0.5, 0.5, 0.5, 0.5]] * 3
    s_box = [[0.5, 0.5, 1.5, 0.5]] * 3
    gts = [[0.0, 0.0, 8.0, 8.0], [8.0, 0.0, 24.0, 8.0]]
    x = seed_level([0.0] * 3, [0.0] * 3, [True, True, False], [0, 1, 0], s_box, t_box, gts, progress=0.5, c=3)
    torch.manual_seed(0)
    loss = build_loss("tar", {"tar": {"cls_weight": 0.0, "box_weight": 0.0, "final": 0.5}}, [3], [3])
    out = loss(x)["tar_feat"]
    s_adapted = loss.adapt[0](x.s_feats[0]).detach()[0, :, 0, 0]  # the 1x1 adapter at cell 0, then by hand
    t = x.t_feats[0][0, :, 0, 0]
    want = 2.0 * (1 - 0.5 * 0.5) * sum((t[k] - s_adapted[k]).item() ** 2 for k in range(3)) / 3 / 1
    assert out.item() == pytest.approx(want, rel=1e-5)
    out.backward()
    assert x.s_feats[0].grad[0, :, 0, 1:].abs().sum() == 0 and x.s_feats[0].grad[0, :, 0, 0].abs().sum() > 0


def test_tar_box_is_the_summed_l1_over_teacher_better_anchors_over_positives():
    """One positive anchor, the teacher exact and the student 2 cells too wide: box = 0.25 * (1 - p) * 2 / 1."""
    x = seed_level([0.0], [0.0], [True], [0], [[0.5, 0.5, 2.5, 0.5]], [[0.5, 0.5, 0.5, 0.5]], progress=0.5)
    out = build_loss("tar", {"tar": {"cls_weight": 0.0, "feat_weight": 0.0}}, [2], [2])(x)
    assert out["tar_box"].item() == pytest.approx(0.25 * 0.5 * 2.0, rel=1e-5)
