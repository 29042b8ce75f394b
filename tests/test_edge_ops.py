"""The torch-free runtime's numpy pre- and post-processing (yolo_kd.edge.ops) against OpenCV and Ultralytics."""

from __future__ import annotations

import numpy as np


def test_resize_linear_matches_opencv():
    """The numpy INTER_LINEAR resize is within one intensity level of cv2.resize (down- and up-scaling)."""
    import cv2

    from yolo_kd.edge.ops import resize_linear

    rng = np.random.default_rng(0)
    for h, w, nh, nw in [(375, 1242, 53, 160), (100, 80, 160, 128), (7, 5, 3, 9)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ref = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR).astype(int)
        assert np.abs(resize_linear(img, nw, nh).astype(int) - ref).max() <= 1


def test_letterbox_and_scale_boxes_match_ultralytics():
    """Letterbox is bit-identical to Ultralytics' LetterBox (landscape, portrait, odd padding, up-scaling, no resize)
    and scale_boxes maps letterboxed boxes back to the original pixels within a pixel of Ultralytics' predictor."""
    import torch
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils.ops import scale_boxes as ul_scale_boxes

    from yolo_kd.edge.ops import letterbox, scale_boxes

    rng = np.random.default_rng(1)
    reused = {s: rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in (320, 160, 96, 64)}  # stale pixels
    for h, w, s in [(480, 640, 320), (375, 1242, 160), (640, 427, 320), (61, 37, 96), (320, 320, 320), (3, 250, 64)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ours, ratio_pad = letterbox(img, (s, s))
        ref = LetterBox((s, s), auto=False, stride=32)(image=img)
        assert ours.shape == ref.shape and np.array_equal(ours, ref), (h, w, s)
        into, into_pad = letterbox(img, (s, s), out=reused[s])  # a reused canvas: every pixel rewritten
        assert into is reused[s] and np.array_equal(into, ref) and into_pad == ratio_pad, (h, w, s)
        boxes = np.array([[-5.0, 2.0, 40.0, 30.0], [10.5, 11.25, s + 3.0, s - 1.0]], np.float32)
        want = ul_scale_boxes((s, s), torch.tensor(boxes), (h, w)).numpy()  # as its predictor calls it
        # ours divides by each axis's gain after rounding the resized size; Ultralytics by one unrounded gain
        np.testing.assert_allclose(scale_boxes(boxes, ratio_pad, (h, w)), want, atol=1.0)
