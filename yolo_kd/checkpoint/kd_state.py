"""The method's trained modules (adapters) kept beside the student in the final checkpoints, for a warm restart.

Ultralytics strips a finished run's checkpoints to the plain student, so the adapters a method trained are lost, and a
follow-up run - a longer schedule, or distillation-aware INT8 (``quantize=8``) - would start them from scratch: with
``builtin`` the KD term then starts ~30x higher and drags the student down (docs/benchmarks.md 4b). They are saved
under the extra key ``yolo_kd`` (method name and a state dict of FP16 tensors; stock Ultralytics ignores the key, and
``weights_only`` loading accepts it), and a new run with the same method and matching shapes starts from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def attach(paths: list[Path], method: str, state: dict[str, Any]) -> None:
    """Add ``{'method', 'kd_modules'}`` under ``yolo_kd`` to each existing checkpoint (atomic rewrite)."""
    import torch

    from yolo_kd.checkpoint.atomic import save_atomic

    for p in paths:
        if not Path(p).exists():
            continue
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
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
