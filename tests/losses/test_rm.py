"""rm: golden values on tiny hand-made tensors (see yolo_kd/losses/rm.py)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.losses.inputs import kl_of_softmax, seed_level, sig
from yolo_kd.losses import build_loss
from yolo_kd.losses.functional import gt_table
from yolo_kd.losses.rm import segment_log_softmax


def test_helpers_gt_table_and_segment_softmax():
    """GT slots follow Ultralytics' per-image order; the segment log-softmax normalises within each group."""
    table = gt_table(torch.tensor([1.0, 0.0, 1.0]), torch.tensor([5, 6, 7]), 2)
    assert table.tolist() == [[6, 0], [5, 7]]
    ls = segment_log_softmax(torch.tensor([0.0, math.log(3), 1.0]), torch.tensor([0, 0, 1]), 2)
    assert torch.allclose(ls.exp(), torch.tensor([0.25, 0.75, 1.0]))


def test_rm_golden_one_instance_and_single_anchor():
    """KL of the anchors' GT-class score softmaxes per instance; one-anchor instances give 0; no sorting."""
    s, t = [0.0, 1.0, -1.0], [2.0, -1.0, 0.5]
    x = seed_level(s, t, [True, True, False])
    want = 240.0 * kl_of_softmax([sig(v) for v in t[:2]], [sig(v) for v in s[:2]])
    assert build_loss("rm", {}, [2], [2])(x)["rm"].item() == pytest.approx(want, rel=1e-5)
    sorted_ = 240.0 * kl_of_softmax(sorted(sig(v) for v in t[:2]), sorted(sig(v) for v in s[:2]))
    assert not math.isclose(want, sorted_, rel_tol=1e-3)  # sorting would change the value
    two = seed_level(s, t, [True, True, True], gt_idx=[0, 0, 1], gts=[[0.0, 0.0, 8.0, 8.0], [16.0, 0.0, 24.0, 8.0]])
    assert build_loss("rm", {}, [2], [2])(two)["rm"].item() == pytest.approx(want / 2, rel=1e-5)  # mean over 2
    none = build_loss("rm", {}, [2], [2])(seed_level(s, t, [False] * 3))["rm"]
    assert none.item() == 0.0 and none.requires_grad


def test_rm_documented_defaults():
    """Every documented default of rm is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("rm") == {"weight": 240.0, "temperature": 1.0, "assigner": "student"}


def test_rm_golden_three_images_two_classes_temperature_two():
    """Three images with two GTs where they can collide in a flat index (image 2 slot 0 vs image 0 slot 1 with two
    slots per image), two classes (each instance reads its own GT class), T = 2: the mean over the 5 instances of
    KL(softmax(sig(t)/T) || softmax(sig(s)/T)) written out here."""
    from yolo_kd.losses.base import KDInputs

    torch.manual_seed(4)
    s, t = torch.randn(3, 2, 4), torch.randn(3, 2, 4)
    fg = torch.tensor([[True] * 4, [True, True, True, False], [True] * 4])
    gt_idx = torch.tensor([[0, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0]])
    cls = [[1, 0], [0], [1, 1]]
    batch = {"img": torch.zeros(3, 3, 32, 32), "batch_idx": torch.tensor([0.0, 0, 1, 2, 2]),
             "cls": torch.tensor([[1.0], [0], [0], [1], [1]]), "bboxes": torch.full((5, 4), 0.25)}  # fmt: skip
    x = KDInputs(s_feats=[], t_feats=[], s_head={"scores": s}, t_head={"scores": t}, batch=batch,
                 assign=lambda side: (fg, gt_idx))  # fmt: skip
    kls = []
    for img, anchors_of in ((0, {0: [0, 1], 1: [2, 3]}), (1, {0: [0, 1, 2]}), (2, {0: [2, 3], 1: [0, 1]})):
        for slot, anchors in anchors_of.items():
            c = cls[img][slot]
            kls.append(kl_of_softmax([sig(t[img, c, a].item()) / 2 for a in anchors],
                                     [sig(s[img, c, a].item()) / 2 for a in anchors]))  # fmt: skip
    loss = build_loss("rm", {"rm": {"temperature": 2.0}}, [2], [2])
    assert loss(x)["rm"].item() == pytest.approx(240.0 * sum(kls) / 5, rel=1e-5)
