"""Pseudo-labels for segment, pose and obb students: the teacher's keypoints, rotated boxes and masks as targets.

Every expected target is written out by hand from the teacher output the test builds (no helper under test).
"""

from __future__ import annotations

import math

import torch

from yolo_kd.pseudo import PseudoLabeler, part, with_targets


def pose_pred() -> torch.Tensor:
    """Decoded pose output (B=2, 4 + 1 class + 2 keypoints x 3, 3 anchors) of a 64 x 32 (h x w) input."""
    p = torch.zeros(2, 4 + 1 + 6, 3)
    p[:, :4, 0] = torch.tensor([16.0, 8.0, 8.0, 4.0])  # box centred (16, 8), 8 wide, 4 high
    p[:, 4, 0] = 0.9
    p[:, 5:, 0] = torch.tensor([10.0, 6.0, 0.9, 40.0, 6.0, 0.9])  # keypoint 2 lies right of the 32 px input
    p[:, :4, 1:] = torch.tensor([20.0, 40.0, 4.0, 4.0]).view(4, 1)
    p[:, 5:, 1] = torch.tensor([20.0, 41.0, 0.3, 21.0, 42.0, 0.6])
    p[:, 4, 1] = 0.7  # a second person, far from the first
    return p


def test_pose_pseudo_labels_are_the_teachers_keypoints():
    """Normalised xy, visibility 1 only where the teacher is >= 0.5 sure and the point is inside the input."""
    lab = PseudoLabeler(conf=0.5, task="pose", nc_t=1, kpt_shape=(2, 3))
    out = lab.label(pose_pred(), 1, (64, 32), 1, None)
    assert out["batch_idx"].tolist() == [1.0, 1.0] and out["cls"].view(-1).tolist() == [0.0, 0.0]
    want = torch.tensor(
        [[[10 / 32, 6 / 64, 1.0], [40 / 32, 6 / 64, 0.0]], [[20 / 32, 41 / 64, 0.0], [21 / 32, 42 / 64, 1.0]]]
    )
    assert out["keypoints"].shape == (2, 2, 3) and torch.allclose(out["keypoints"], want)
    assert torch.allclose(out["bboxes"][0], torch.tensor([16 / 32, 8 / 64, 8 / 32, 4 / 64]))
    assert lab.targets == ("cls", "bboxes", "batch_idx", "keypoints")


def test_obb_pseudo_labels_are_regularised_rotated_boxes():
    """xywh normalised, an angle >= pi/2 brought into [0, pi/2) by swapping width and height (the dataset's range)."""
    p = torch.zeros(1, 4 + 2 + 1, 2)
    p[0, :4, 0] = torch.tensor([16.0, 8.0, 8.0, 4.0])
    p[0, 4 + 1, 0] = 0.8  # class 1
    p[0, 6, 0] = 1.8  # radians
    p[0, :4, 1] = torch.tensor([2.0, 2.0, 1.0, 1.0])  # a low-score anchor
    out = PseudoLabeler(conf=0.5, task="obb", nc_t=2).label(p, 0, (64, 32), 2, None)
    assert out["cls"].view(-1).tolist() == [1.0]
    want = torch.tensor([16 / 32, 8 / 64, 4 / 32, 8 / 64, 1.8 - math.pi / 2])
    assert out["bboxes"].shape == (1, 5) and torch.allclose(out["bboxes"][0], want, atol=1e-6)


def seg_pred(big_conf: float = 0.9, small_conf: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded seg output of a 32 x 32 input (2 classes, 2 mask coefficients) and 8 x 8 prototypes.

    Anchor 0: the whole image, class 0; anchor 1: the box x 8-16, y 8-16, class 1; both masks are prototype 0 (> 0
    everywhere), cropped to their boxes.
    """
    p = torch.zeros(1, 4 + 2 + 2, 2)
    p[0, :4, 0] = torch.tensor([16.0, 16.0, 32.0, 32.0])
    p[0, 4, 0] = big_conf
    p[0, :4, 1] = torch.tensor([12.0, 12.0, 8.0, 8.0])
    p[0, 5, 1] = small_conf
    p[0, 6, :] = 1.0  # coefficient of prototype 0
    proto = torch.stack([torch.ones(8, 8), -torch.ones(8, 8)])[None]
    return p, proto


def test_seg_pseudo_labels_draw_the_teachers_masks_largest_first():
    """One index map per image (overlap_mask): the larger instance is 1, the smaller one on top is 2, the targets in
    that order whatever the NMS order; without overlap one mask per instance."""
    for big, small in ((0.9, 0.8), (0.6, 0.95)):  # the small instance first in NMS order in the second case
        lab = PseudoLabeler(conf=0.5, task="segment", nc_t=2)
        out = lab.label(seg_pred(big, small), 0, (32, 32), 2, None)
        want = torch.ones(1, 8, 8, dtype=torch.uint8)
        want[0, 2:4, 2:4] = 2  # the box 8-16 px is proto pixels 2-3
        assert out["masks"].dtype == torch.uint8 and torch.equal(out["masks"], want)
        assert out["cls"].view(-1).tolist() == [0.0, 1.0]
        assert torch.allclose(out["bboxes"][1], torch.tensor([12 / 32, 12 / 32, 8 / 32, 8 / 32]))
    lab = PseudoLabeler(conf=0.5, task="segment", nc_t=2, overlap=False)
    out = lab.label(seg_pred(), 0, (32, 32), 2, None)
    small = torch.zeros(8, 8, dtype=torch.uint8)
    small[2:4, 2:4] = 1
    assert torch.equal(out["masks"], torch.stack([torch.ones(8, 8, dtype=torch.uint8), small]))
    assert lab.targets == ("cls", "bboxes", "batch_idx", "masks")


def test_task_targets_join_and_split_the_batch():
    """Pseudo masks (resized to the labeled size) and keypoints are appended; ``part`` gives each image its own."""
    labeled = {"img": torch.zeros(2, 3, 32, 32), "cls": torch.zeros(1, 1), "bboxes": torch.rand(1, 4),
               "batch_idx": torch.tensor([0.0]), "masks": torch.zeros(1, 16, 16, dtype=torch.uint8)}  # fmt: skip
    out = PseudoLabeler(conf=0.5, task="segment", nc_t=2).label(seg_pred(), 1, (32, 32), 2, None)
    assert out["masks"].shape == (0, 8, 8)  # image 0 is labeled: nothing for it
    pseudo = {"cls": torch.tensor([[1.0]]), "bboxes": torch.rand(1, 4), "batch_idx": torch.tensor([1.0]),
              "masks": torch.zeros(1, 8, 8, dtype=torch.uint8)}  # fmt: skip
    pseudo["masks"][0, 0, 1] = 1
    full = with_targets(labeled, pseudo)
    want = torch.zeros(2, 16, 16, dtype=torch.uint8)
    want[1, 0:2, 2:4] = 1  # nearest upsampling x2
    assert torch.equal(full["masks"], want)
    un = part(full, 1, 2)
    assert un["batch_idx"].tolist() == [0.0] and torch.equal(un["masks"], want[1:])
    kp = {"img": torch.zeros(2, 3, 8, 8), "cls": torch.zeros(2, 1), "bboxes": torch.rand(2, 4),
          "batch_idx": torch.tensor([0.0, 1.0]), "keypoints": torch.arange(12.0).view(2, 2, 3)}  # fmt: skip
    one = part(kp, 1, 2, ("cls", "bboxes", "batch_idx", "keypoints"))
    assert torch.equal(one["keypoints"], kp["keypoints"][1:]) and one["img"].shape[0] == 1
