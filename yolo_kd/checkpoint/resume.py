"""Which checkpoint ``resume`` continues: exactly the one named, and only a yolo-kd run's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError


def resume_target(resume: Any, model: Any) -> str:
    """The checkpoint to resume: ``resume=path``, or ``model=path`` with ``resume=True`` (as ``yolo train resume``).

    Refuses a missing file, a bare ``resume=True`` (no guessing of the newest run in the folder) and a
    checkpoint that is not a yolo-kd run, each with one line naming the fix.
    """
    path = resume if isinstance(resume, (str, Path)) and str(resume) not in {"True", "true"} else model
    if not path or not str(path).endswith(".pt"):
        raise KDError(
            "resume=True needs the checkpoint to continue: pass model=runs/detect/NAME/weights/last.pt "
            "(or resume=that path); yolo-kd never guesses the newest run"
        )
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise KDError(f"resume checkpoint '{path}' not found; pass the run's weights/last.pt")
    from ultralytics.nn.tasks import torch_safe_load

    ckpt = torch_safe_load(str(p))[0]
    args = ckpt.get("train_args") or {}
    if ckpt.get("epoch") == -1 and (ckpt.get("yolo_kd") or args.get("distill_model")):
        raise KDError(
            f"'{path}' is a finished run (its optimizer was stripped at the end); nothing to resume. To train on from "
            f"it, start a new run: yolo-kd train student={path} teacher=... data=... (same method warm-starts it)"
        )
    if not args.get("distill_model") or "method" not in args:
        raise KDError(
            f"'{path}' is not a yolo-kd run (its train_args have no teacher/method); resume it with Ultralytics: "
            f"yolo train resume model={path}"
        )
    return str(p)


def run_dir(checkpoint: str | Path) -> Path:
    """The run folder a resumed run writes into: the named checkpoint's own (``RUN/weights/last.pt`` -> ``RUN``).

    Ultralytics would write into the folder recorded inside the checkpoint, which after a copy or a move is another
    run's; a checkpoint outside a ``weights`` folder has no run folder of its own and is refused.
    """
    p = Path(checkpoint).resolve()
    if p.parent.name != "weights" or not (p.parent.parent / "args.yaml").exists():
        raise KDError(
            f"'{checkpoint}' is not inside a run folder (RUN/weights/{p.name} beside RUN/args.yaml); resume writes only"
            " into the checkpoint's own run folder, so pass the file where the run left it"
        )
    return p.parent.parent


def check_same_teacher(checkpoint: str | Path, teacher: str | Path | None = None) -> str:
    """The teacher to resume with, checked to be the network the run was trained with; one line otherwise.

    ``teacher`` (a moved file must hold the same weights), else the one recorded in the checkpoint. Checkpoints
    written before the fingerprint was recorded are not checked.
    """
    from ultralytics.nn.tasks import load_checkpoint, torch_safe_load

    from yolo_kd.checkpoint.kd_state import STATE, fingerprint

    ckpt = torch_safe_load(str(checkpoint))[0]
    if teacher is None:
        teacher = (ckpt.get("train_args") or {}).get("distill_model")
        if not teacher or not Path(str(teacher)).exists():
            raise KDError(f"the teacher recorded in '{checkpoint}' ({teacher}) is gone; pass teacher= where it is now")
    saved = getattr(ckpt.get("ema"), STATE, None) or {}
    if not saved.get("teacher"):
        return str(teacher)
    try:
        now = fingerprint(load_checkpoint(str(teacher))[0])
    except Exception as e:
        raise KDError(f"teacher '{teacher}' for resuming '{checkpoint}' is not readable ({type(e).__name__}); pass "
                      "teacher= the run's teacher file") from None  # fmt: skip
    if now != saved["teacher"]:
        raise KDError(
            f"teacher '{teacher}' is not the network '{checkpoint}' was trained with (its weights differ); pass "
            "teacher= the run's own teacher file (where it was moved), or start a new run with this teacher"
        )
    return str(teacher)
