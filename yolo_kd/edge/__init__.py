"""Torch-free inference on OpenVINO IR exported from a student: ``Detector(folder)(image) -> Detections``.

Depends on numpy, openvino, opencv and pyyaml only (``pip install yolo-kd[edge]``); never imports torch or
ultralytics.
"""

from yolo_kd.edge.runtime import Detections, Detector, list_images, read_image

__all__ = ["Detections", "Detector", "list_images", "read_image"]
