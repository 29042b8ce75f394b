"""Distillation-aware INT8 training: fake-quantize the student only, before the teacher-student wrapper exists."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:  # typed by Ultralytics' base: the KD trainer imports this module
    from ultralytics.engine.trainer import BaseTrainer


def prepare_student_qat(trainer: BaseTrainer, student: nn.Module) -> nn.Module:
    """ModelOpt fake-quantization on the student only (Ultralytics' ``prepare_qat``); the teacher stays in float.

    Ultralytics would quantize whatever ``trainer.model`` is at that point - here the teacher-student wrapper - so the
    student is prepared now and ``quantize`` is set back once training starts; checkpoints carry the student's
    quantization (``qat_state`` reads ``student_model``) and resume restores it.
    """
    from ultralytics.utils.torch_utils import prepare_qat

    batch = max(trainer.batch_size // max(trainer.world_size, 1), 1)
    loader = trainer.get_dataloader(trainer.data["train"], batch_size=batch, rank=-1, mode="train")
    student = prepare_qat(student, loader, trainer.preprocess_batch)
    trainer.args.quantize = None  # Ultralytics' own prepare_qat would now wrap the teacher as well
    trainer.add_callback("on_train_start", restore_quantize_flag)
    return student


def restore_quantize_flag(trainer: BaseTrainer) -> None:
    """Callback (on_train_start): record ``quantize=8`` again, so checkpoints and resume know the run is QAT."""
    trainer.args.quantize = 8
