"""The runtime's result for one image: boxes in original pixels and, per task, masks, keypoints or rotated boxes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from yolo_kd.edge.task_ops import corners, rle


@dataclass
class Detections:
    """Detections of one image in original-image pixels.

    Attributes:
        boxes (np.ndarray): (n, 4) xyxy.
        scores (np.ndarray): (n,) confidences.
        classes (np.ndarray): (n,) class indices.
        names (dict[int, str]): Class names from the model's metadata.
        path (str): Source file, when read from disk.
        masks (np.ndarray | None): (n, h, w) bool instance masks on the original image (segmentation models).
        keypoints (np.ndarray | None): (n, K, 2 or 3) x, y (and visibility) per keypoint (pose models).
        xywhr (np.ndarray | None): (n, 5) rotated boxes, centre, sides and angle in radians (obb models; ``boxes``
            then holds their enclosing axis-aligned boxes).
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    names: dict[int, str]
    path: str = ""
    masks: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    xywhr: np.ndarray | None = None

    def to_dicts(self) -> list[dict]:
        """One dict per detection: name, class, confidence, box (x1, y1, x2, y2), and the task's own fields.

        ``xywhr`` with its four corner points (``polygon``) for obb; ``mask`` is COCO's uncompressed run-length
        encoding on the original image; ``keypoints`` [x, y(, visibility)].
        """
        out = []
        for i, (b, s, c) in enumerate(zip(self.boxes, self.scores, self.classes)):
            d = {"name": self.names.get(int(c), str(int(c))), "class": int(c), "confidence": float(s),
                 "box": [round(float(v), 2) for v in b]}  # fmt: skip
            if self.masks is not None:
                d["mask"] = rle(self.masks[i])
            if self.keypoints is not None:
                d["keypoints"] = [[round(float(v), 3) for v in k] for k in self.keypoints[i]]
            if self.xywhr is not None:
                d["xywhr"] = [round(float(v), 4) for v in self.xywhr[i]]
                d["polygon"] = [[round(float(v), 2) for v in pt] for pt in corners(self.xywhr[i : i + 1])[0]]
            out.append(d)
        return out
