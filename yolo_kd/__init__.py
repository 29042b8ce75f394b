"""yolo-kd: knowledge distillation for Ultralytics YOLO detect, segment, pose and obb students.

Importing the package is light (no torch, no ultralytics): ``KDTrainer``, ``KDModel``, ``LOSSES`` and ``register``
are loaded on first access, so the torch-free edge runtime can live in this package too.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "KDTrainer": "yolo_kd.trainer",
    "KDSegmentationTrainer": "yolo_kd.tasks",
    "KDPoseTrainer": "yolo_kd.tasks",
    "KDOBBTrainer": "yolo_kd.tasks",
    "KDModel": "yolo_kd.model",
    "LOSSES": "yolo_kd.losses",
    "register": "yolo_kd.losses",
    "DistillLoss": "yolo_kd.losses",
    "KDInputs": "yolo_kd.losses",
    "KDError": "yolo_kd.errors",
}


def __getattr__(name: str):
    """Import public names lazily."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'yolo_kd' has no attribute '{name}'")


__all__ = ["__version__", *_LAZY]
