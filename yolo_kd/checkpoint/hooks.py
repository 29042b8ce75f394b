"""The trainer's checkpoint hooks: every file written is a stock Ultralytics checkpoint; resume restores the method.

Ultralytics pickles its EMA model into ``last.pt``/``best.pt`` at every epoch. Ours is a ``KDModel`` (a yolo_kd
class), so such a file would not load where yolo_kd is not installed. :class:`CheckpointHooks` saves the EMA's plain
student ``DetectionModel`` instead, with the method's state (adapters, balancer, projector: everything that is not
student or teacher) riding along as a plain dict of tensors (``kd_state.STATE``), and turns it back into the KD
model's EMA when Ultralytics resumes or rolls back after a NaN loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import unwrap_model

from yolo_kd.checkpoint import kd_state


def drop_row(csv: Path, epoch: int) -> None:
    """Remove the last row of Ultralytics' results.csv when it is the row of ``epoch`` (1-based, its first column)."""
    if not csv.exists():
        return
    lines = csv.read_text().splitlines(keepends=True)
    if len(lines) > 1 and lines[-1].split(",", 1)[0].strip() == str(epoch):
        csv.write_text("".join(lines[:-1]))


class CheckpointHooks:
    """Mixin for a KD trainer: overrides Ultralytics' checkpoint hooks (save, state load, NaN roll-back, setup)."""

    def save_model(self):
        """Ultralytics' save; on failure (a full disk) results.csv loses this epoch's row, which has no checkpoint.

        A resume re-runs that epoch, so the file would otherwise list it twice.
        """
        try:
            return self._save_student()
        except OSError:
            drop_row(self.csv, self.epoch + 1)
            raise

    def _save_student(self):
        """Ultralytics' save with the EMA's student (plus the method state as tensors) in place of the KD model."""
        kd = self.ema.ema
        if getattr(kd, "student_model", None) is None or not hasattr(kd, "kd_loss"):
            return super().save_model()
        if getattr(self, "_teacher_fp", None) is None:  # the teacher is frozen: once per run
            self._teacher_fp = kd_state.fingerprint(unwrap_model(self.model).teacher_model)
        student = kd_state.snapshot(kd, self.args.method, self._teacher_fp)
        self.ema.ema = student
        try:
            return super().save_model()
        finally:
            self.ema.ema = kd
            kd_state.unsnapshot(student)

    def _load_checkpoint_state(self, ckpt: dict[str, Any]) -> None:
        """Ultralytics' optimizer/EMA restore, the saved student and method state put back into the KD model's EMA."""
        model = unwrap_model(self.model)
        if hasattr(model, "kd_loss") and ckpt.get("ema") is not None and not hasattr(ckpt["ema"], "kd_loss"):
            ckpt = {**ckpt, "ema": kd_state.kd_ema(model, ckpt["ema"])}
        super()._load_checkpoint_state(ckpt)

    def _handle_nan_recovery(self, epoch: int) -> bool:
        """Ultralytics' NaN roll-back to last.pt, run on the student, then the EMA and the method's modules too."""
        model = unwrap_model(self.model)
        if not hasattr(model, "kd_loss"):
            return super()._handle_nan_recovery(epoch)
        wrapped, self.model = self.model, model.student_model  # last.pt holds the plain student
        try:
            recovered = super()._handle_nan_recovery(epoch)
        finally:
            self.model = wrapped
        if recovered:
            from ultralytics.nn.tasks import load_checkpoint

            ckpt = load_checkpoint(self.last)[1]
            self._load_checkpoint_state(ckpt)  # the EMA of the whole KD model, not the student
            if line := kd_state.rollback(model, ckpt, self.last, self.args.method):
                LOGGER.info(line)
        return recovered

    def setup_model(self):
        """Load or build the student; keep what the loaded checkpoint holds for the method (resume or warm start)."""
        if getattr(self.args, "safe_load", False) and not self.resume and str(self.model).lower().endswith(".pt"):
            from ultralytics.utils import RANK

            from yolo_kd.checkpoint.safe_load import safe_load, safe_model

            ckpt = safe_load(self.model)
            self._kd_saved = kd_state.saved_from(ckpt, resume=False)
            weights = safe_model(self.model, ckpt)
            self.model = self.get_model(cfg=weights.yaml, weights=weights, verbose=RANK == -1)
            return None
        ckpt = super().setup_model()
        self._kd_saved = kd_state.saved_from(ckpt, self.resume)
        return ckpt
