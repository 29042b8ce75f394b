"""A cheaper frozen-teacher forward: fp16 on CUDA, bf16 on CPUs with native bf16, checked against FP32 once.

``kd_teacher_precision=auto`` picks the reduced precision the hardware has; on the first training batch the teacher's
Detect inputs and class scores are compared with an FP32 forward, and when they differ by more than the tolerance the
run falls back to FP32 with one log line. A kept bf16 teacher on a CPU then runs its backbone and neck channels-last
(``channels_last``: same outputs, less time). The student, its loss and the KD terms keep their own precision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:  # the KDModel, typed as a module: importing yolo_kd.model here would close a circle
    from torch.nn import Module

PRECISIONS = ("fp32", "auto", "fp16", "bf16")
REL_TOL = 0.02  # relative L2 error of each level's map
SCORE_TOL = 0.02  # max abs difference of class probabilities


def check(precision: str, key: str = "kd_teacher_precision") -> None:
    """One-line error naming the argument when ``precision`` is not one of ``PRECISIONS``."""
    if precision not in PRECISIONS:
        from yolo_kd.errors import KDError

        raise KDError(f"{key}='{precision}' is not one of {', '.join(PRECISIONS)}")


def resolve(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the teacher (None = FP32)."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        native = (
            getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
            or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
        )
        return torch.bfloat16 if device.type == "cpu" and native else None
    return torch.float16 if precision == "fp16" else torch.bfloat16


def parity(ref: list[Tensor], got: list[Tensor], ref_scores: Tensor, got_scores: Tensor) -> tuple[bool, str]:
    """Whether reduced-precision teacher outputs match FP32 ones, and a line saying by how much (and where)."""
    norms = [float(r.float().norm()) for r in ref]
    rels = [float((g.float() - r.float()).norm()) / max(n, 1e-12) for r, g, n in zip(ref, got, norms)]
    worst = max(range(len(rels)), key=rels.__getitem__)
    ds = float((got_scores.float().sigmoid() - ref_scores.float().sigmoid()).abs().max())
    ok = rels[worst] <= REL_TOL and ds <= SCORE_TOL
    where = f" (worst: feature level {worst}, FP32 norm {norms[worst]:.1e})" if rels[worst] > REL_TOL else ""
    return ok, f"max relative map error {rels[worst]:.1e}{where}, max class-probability difference {ds:.1e}"


class TeacherForward:
    """The frozen teacher's forward at the chosen precision, checked against FP32 on the first batch.

    Owns its precision state (``dtype``, ``checked``) but not the teacher: Ultralytics' EMA deep-copies the KDModel and
    strips only ``teacher_model`` by name, so ``run`` is handed the model whose hooks capture the features.

    Args:
        precision (str): One of ``PRECISIONS``.
        device (torch.device): Where the teacher runs.
    """

    def __init__(self, precision: str, device: torch.device) -> None:
        """Resolve the dtype; an FP32 teacher needs no check."""
        self.dtype = resolve(precision, device)
        self.checked = self.dtype is None

    def run(self, m: Module, img: Tensor) -> None:
        """Frozen teacher forward of the KDModel ``m`` (its hooks capture the features), reduced and checked if set."""
        dev = img.device.type
        with torch.no_grad():
            if not self.checked:
                self.check(m, img)
                return
            with torch.autocast(dev, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
                m.teacher_model(img)
            for i in range(len(m.feats_idx) - 1):  # NCHW as the methods always read them (no copy when already so)
                m._teacher_feats[i] = m._teacher_feats[i].contiguous()

    def check(self, m: Module, img: Tensor) -> None:
        """First batch: FP32 and reduced forwards compared (``parity``); keep the reduced one or fall back, and log."""
        from ultralytics.utils import LOGGER

        dev, n = img.device.type, len(m.feats_idx) - 1
        m.teacher_model(img)
        ref = [m._teacher_feats[i].clone() for i in range(n)]
        ref_scores = m.decouple_outputs(m._teacher_feats[n], branch="one2many")["scores"].clone()
        m._teacher_feats.clear()
        with torch.autocast(dev, dtype=self.dtype):
            m.teacher_model(img)
        got_scores = m.decouple_outputs(m._teacher_feats[n], branch="one2many")["scores"]
        ok, line = parity(ref, [m._teacher_feats[i] for i in range(n)], ref_scores, got_scores)
        name = str(self.dtype).replace("torch.", "")
        LOGGER.info(f"yolo-kd: teacher in {name} ({line}); " + ("kept" if ok else "falling back to FP32"))
        self.checked = True
        if not ok:
            self.dtype = None
            m._teacher_feats.clear()
            m.teacher_model(img)
        elif layout_applies(dev, self.dtype):
            channels_last(m.teacher_model)


def layout_applies(device_type: str, dtype: torch.dtype | None) -> bool:
    """Whether a teacher running at ``dtype`` on ``device_type`` gets ``channels_last`` (a bf16 teacher on a CPU)."""
    return device_type == "cpu" and dtype is torch.bfloat16


def channels_last(teacher: torch.nn.Module) -> None:
    """Put the frozen teacher's backbone and neck in channels-last layout (its Detect head stays as it is).

    oneDNN runs bf16 convolutions on NHWC maps without reordering each one: the bf16 teacher forward of a yolov8s at
    320, batch 8 on the 2-core Xeon takes 87-110 ms instead of 147-175 (four runs), with bit-identical outputs
    (docs/benchmarks.md D5; tests/test_teacher_precision.py). Only for a bf16 teacher on the CPU: in FP32 the layout
    moves the outputs by ~1e-6 relative, so an FP32 teacher stays the exact reference. The head keeps its layout so
    that the methods that re-run it on level maps (GKD, CrossKD, BCKD) compute as before.
    """
    for layer in teacher.model[:-1]:
        layer.to(memory_format=torch.channels_last)
