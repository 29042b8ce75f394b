"""KDTrainer's callbacks: the KD schedule per epoch, and what a run leaves beside the student when it ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ultralytics.utils import LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from yolo_kd.model import KDModel

if TYPE_CHECKING:  # typed by Ultralytics' base: importing yolo_kd.trainer here would close a circle with it
    from ultralytics.engine.trainer import BaseTrainer


def keep_kd_modules(trainer: BaseTrainer) -> None:
    """Callback (on_train_end): store the method's trained modules beside the student in best.pt and last.pt."""
    ema = getattr(trainer.ema, "ema", None)
    if RANK in {-1, 0} and isinstance(ema, KDModel):  # also strips the mid-training method state of the final files
        from yolo_kd.checkpoint.kd_state import attach

        attach([trainer.best, trainer.last], trainer.args.method, ema.kd_loss.state_dict())


def plot_kd(trainer: BaseTrainer) -> None:
    """Callback (on_train_end): ``kd_terms.png`` beside results.png, one panel per KD term."""
    if RANK in {-1, 0} and trainer.args.plots:
        from yolo_kd.kd_plots import plot_kd_terms

        model = unwrap_model(trainer.model)
        names = tuple(n for n in trainer.loss_names if n in getattr(model, "kd_names", ()))
        bal = getattr(model, "balancer", None)
        names += tuple(f"kd_mult/{n}" for n in bal.names) if bal is not None else ()
        plot_kd_terms(trainer.csv, names, trainer.save_dir / "kd_terms.png")


def say_teacher_frozen(trainer: BaseTrainer) -> None:
    """Callback (on_pretrain_routine_end): one line for the teacher's frozen tensors instead of one per tensor."""
    if trainer.freeze_filter.count:
        LOGGER.info(f"yolo-kd: teacher frozen ({trainer.freeze_filter.count} tensors, eval mode, no gradients)")


def update_schedule(trainer: BaseTrainer) -> None:
    """Callback (on_train_epoch_start): set training progress and the KD weight multiplier on the model."""
    model = unwrap_model(trainer.model)
    if not isinstance(model, KDModel):
        return
    a = trainer.args
    model.progress = trainer.epoch / max(trainer.epochs, 1)
    off = a.kd_close_mosaic and a.close_mosaic and trainer.epoch >= trainer.epochs - a.close_mosaic
    model.kd_scale = 0.0 if off else kd_scale(model.progress, a.kd_decay, float(a.kd_final))


def kd_scale(progress: float, decay: str, final: float) -> float:
    """Distillation-weight multiplier at training progress ``progress`` in [0, 1] (1 at the start)."""
    import math

    p = min(max(progress, 0.0), 1.0)
    if decay == "linear":
        return 1.0 - (1.0 - final) * p
    if decay == "cosine":
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * p))
    return 1.0
