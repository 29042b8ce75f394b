"""Torch-free inference on a student exported to OpenVINO IR or ONNX: ``Detector(model)(image) -> Detections``.

Depends on numpy, pyyaml and one runtime: OpenVINO (``pip install "yolo-kd[edge]"``) or ONNX Runtime
(``pip install "yolo-kd[edge-onnx]"``); OpenCV when present, else Pillow. Never imports torch or ultralytics.
"""

from yolo_kd.edge.runtime import Detections, Detector, list_images, read_image

__all__ = ["Detections", "Detector", "list_images", "read_image"]
