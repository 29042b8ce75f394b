"""Distillation methods: the registry (``registry.py``), the interface (``base.py``) and one file per paper."""

# importing a method module registers it
from yolo_kd.losses import aid, bckd, bmfi, builtin, crosskd, cwd, fgd, gkd, gkdpaper, kd, kptkd, ld  # noqa: F401, I001
from yolo_kd.losses import maskkd, mgd, mimic, pfi, pkd, rm, skd, tar  # noqa: F401, I001
from yolo_kd.losses.base import Assignment, DistillLoss, KDInputs
from yolo_kd.losses.registry import LOSSES, MethodSpec, build_loss, describe, method_params, parse_method, register

__all__ = ["LOSSES", "Assignment", "DistillLoss", "KDInputs", "MethodSpec", "build_loss", "describe", "method_params",
           "parse_method", "register"]  # fmt: skip
