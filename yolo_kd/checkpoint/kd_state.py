"""The method's trained modules (adapters) kept beside the student in the final checkpoints, for a warm restart.

Ultralytics strips a finished run's checkpoints to the plain student, so the adapters a method trained are lost, and a
follow-up run - a longer schedule, or distillation-aware INT8 (``quantize=8``) - would start them from scratch: with
``builtin`` the KD term then starts ~30x higher and drags the student down (docs/benchmarks.md 4b). They are saved
under the extra key ``yolo_kd`` (method name and a state dict of FP16 tensors; stock Ultralytics ignores the key, and
``weights_only`` loading accepts it), and a new run with the same method and matching shapes starts from them.

This module is the single owner of that state: what a loaded checkpoint holds for the method (``saved_from``), putting
it into a new KDModel (``restore``: resume, or a warm start), the NaN roll-back (``rollback``), the final
checkpoints (``attach``) and the mid-training ones (``snapshot``, ``kd_ema``): those hold the EMA's plain student with
the rest of the KD model's EMA state as a dict of FP32 tensors in its ``STATE`` attribute, so stock Ultralytics loads
them without yolo_kd (checkpoint/hooks.py). The trainer only delegates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE = "yolo_kd"  # attribute of a mid-training checkpoint's student: {"method": str, "state": {key: FP32 tensor}}
KEEP = ("student_model.", "teacher_model.")  # state-dict prefixes that are not the method's


def snapshot(kd: Any, method: str, teacher: str | None = None) -> Any:
    """The EMA KD model's student, carrying the rest of the EMA state and the teacher's fingerprint under ``STATE``.

    The rest: adapters, balancer, projector. The fingerprint lets resume check that a moved teacher is the same network.
    """
    student = kd.student_model
    state = {k: v.detach().float().clone() for k, v in kd.state_dict().items() if not k.startswith(KEEP)}
    setattr(student, STATE, {"method": method, "state": state, "teacher": teacher})
    return student


def fingerprint(model: Any) -> str:
    """sha256 over the names, shapes and FP32 values of a model's parameters and buffers (layout-independent)."""
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(f"{k}:{tuple(v.shape)}".encode())
        h.update(v.detach().float().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def unsnapshot(student: Any) -> None:
    """Remove what ``snapshot`` attached to the live EMA's student."""
    student.__dict__.pop(STATE, None)


def kd_ema(kd: Any, student: Any) -> Any:
    """The KD model's EMA shape (as Ultralytics' ``ModelEMA`` builds it) holding a saved student and its method state.

    What Ultralytics' resume and NaN roll-back load their EMA from; a student saved without method state (a file
    from another trainer) leaves the method's EMA tensors as the live model's.
    """
    from ultralytics.utils.torch_utils import ModelEMA

    ema = ModelEMA(kd).ema
    state = ema.state_dict()
    state.update({f"student_model.{k}": v for k, v in student.float().state_dict().items()})
    state.update((getattr(student, STATE, None) or {}).get("state", {}))
    ema.load_state_dict(state)
    return ema


def _method_state(ema: Any) -> dict[str, Any] | None:
    """The method state of a loaded mid-training EMA: new files (``STATE``) or older ones that pickled a KDModel."""
    saved = getattr(ema, STATE, None)
    if saved is not None:
        return saved["state"]
    if hasattr(ema, "kd_loss"):  # checkpoints written before 0.1.0's stock mid-training files
        return {k: v.float() for k, v in ema.state_dict().items() if not k.startswith(KEEP)}
    return None


def _part(state: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    """Entries of ``state`` under ``prefix.`` with the prefix removed (None when there are none)."""
    out = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
    return out or None


@dataclass(frozen=True)
class Saved:
    """What a loaded checkpoint holds for the method beside the student.

    Attributes:
        modules (dict | None): Resume: the EMA's method modules (FP32 state dict).
        balance (dict | None): Resume: the ``kd_balance=auto`` multipliers' state.
        warm (dict | None): A fresh run from a KD student's best.pt: its ``yolo_kd`` entry.
    """

    modules: dict[str, Any] | None = None
    balance: dict[str, Any] | None = None
    warm: dict[str, Any] | None = None


def saved_from(ckpt: dict[str, Any] | None, resume: bool) -> Saved:
    """Read the method's state from a checkpoint Ultralytics loaded (its EMA on resume, ``yolo_kd`` otherwise)."""
    ckpt = ckpt or {}
    if not resume:
        return Saved(warm=ckpt.get("yolo_kd"))
    state = _method_state(ckpt.get("ema"))
    if state is None:
        return Saved()
    return Saved(modules=_part(state, "kd_loss") or {}, balance=_part(state, "balancer"))


def restore(kd: Any, saved: Saved, method: str, student_pt: str | Path) -> str | None:
    """Load saved state into a new KDModel; return a log line, or None when there was nothing to load."""
    if saved.balance is not None and kd.balancer is not None:
        kd.balancer.load_state_dict(saved.balance)
    if saved.modules is not None:
        kd.kd_loss.load_state_dict(saved.modules)
        return f"yolo-kd: restored '{method}' modules from the resume checkpoint"
    if saved.warm:
        return load_warm(kd.kd_loss, saved.warm, method, student_pt)
    return None


def rollback(kd: Any, ckpt: dict[str, Any], last: Path, method: str) -> str | None:
    """After Ultralytics' NaN roll-back of the student to ``last`` (read as ``ckpt``): the method's modules too."""
    state = _method_state(ckpt.get("ema"))
    if state is None:
        return None
    kd.kd_loss.load_state_dict(_part(state, "kd_loss") or {})
    return f"yolo-kd: '{method}' modules rolled back to {last} with the student"


def attach(paths: list[Path], method: str, state: dict[str, Any]) -> None:
    """Add ``{'method', 'kd_modules'}`` under ``yolo_kd`` to each existing checkpoint (atomic rewrite)."""
    import torch

    from yolo_kd.checkpoint.atomic import save_atomic

    for p in paths:
        if not Path(p).exists():
            continue
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
        for k in ("model", "ema"):
            if ckpt.get(k) is not None:
                unsnapshot(ckpt[k])  # the final student keeps the modules under the key below only
        if not state:
            save_atomic(ckpt, p)
            continue
        ckpt["yolo_kd"] = {"method": method, "kd_modules": {k: v.detach().half() for k, v in state.items()}}
        save_atomic(ckpt, p)


def load_warm(kd_loss: Any, saved: dict[str, Any], method: str, student_pt: str | Path) -> str:
    """Load a student checkpoint's ``yolo_kd`` entry into ``kd_loss`` when the method and shapes match.

    The trainer passes the entry of the checkpoint Ultralytics already loaded; ``student_pt`` only names it.

    Returns:
        (str): A log line saying what happened.
    """
    if saved.get("method") != method:
        return f"yolo-kd: {student_pt} carries '{saved.get('method')}' modules, not '{method}'; they start fresh"
    own = kd_loss.state_dict()
    state = saved["kd_modules"]
    if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
        return f"yolo-kd: the '{method}' modules in {student_pt} do not fit this teacher/student pair; they start fresh"
    kd_loss.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return f"yolo-kd: '{method}' modules warm-started from {student_pt}"
