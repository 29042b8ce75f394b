"""detections_map: Ultralytics' matching and AP over Detections from either inference path."""

from __future__ import annotations

import numpy as np
import pytest


def test_detections_map_hand_checked():
    """Exact boxes give Ultralytics' 0.995 at every IoU threshold; one box at IoU 0.616 counts only at 0.50-0.60."""
    from yolo_kd.edge.runtime import Detections
    from yolo_kd.tools.parity import detections_map, iou

    cls, boxes = np.array([0, 1]), np.array([[10, 10, 50, 50], [60, 60, 100, 100.0]])
    exact = Detections(boxes.copy(), np.array([0.9, 0.8]), cls.copy(), {0: "a", 1: "b"})
    assert detections_map([exact], [(cls, boxes)]) == pytest.approx((0.995, 0.995))
    shifted = np.array([[10, 10, 50, 50], [60, 69.5, 100, 109.5]])
    assert iou(shifted[1:], boxes[1:])[0] == pytest.approx(0.616, abs=1e-3)
    m50, m = detections_map([Detections(shifted, np.array([0.9, 0.8]), cls.copy(), {})], [(cls, boxes)])
    assert m50 == pytest.approx(0.995) and m == pytest.approx((0.995 + 0.995 * 3 / 10) / 2)
