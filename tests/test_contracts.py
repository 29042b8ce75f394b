"""Contract tests: the Ultralytics 8.4 internals yolo-kd relies on. A failure here means the pin must move."""

from __future__ import annotations

import inspect

import torch


def test_distillation_model_surface():
    """DistillationModel: hooks dicts, layer discovery, output decoupling, loss_sl2 signature, strip on save."""
    from ultralytics.nn.distill_model import DistillationModel, FeatureHook
    from ultralytics.utils.torch_utils import strip_optimizer

    for name in ("get_distill_layers", "decouple_outputs", "loss_sl2", "_freeze_teacher", "__getstate__"):
        assert hasattr(DistillationModel, name), name
    assert list(inspect.signature(DistillationModel.__init__).parameters) == ["self", "teacher_model", "student_model"]
    assert callable(FeatureHook({}, 0))
    assert "DistillationModel" in inspect.getsource(strip_optimizer)  # best.pt/last.pt unwrap to the student


def test_ema_strips_teacher_and_trainer_wraps_only_once():
    """ModelEMA drops `teacher_model`; the trainer skips its own wrap when the model is already distilling."""
    from ultralytics.engine.trainer import BaseTrainer
    from ultralytics.utils.torch_utils import ModelEMA

    assert "teacher_model" in inspect.getsource(ModelEMA.__init__)
    src = inspect.getsource(BaseTrainer._setup_train)
    assert "not isinstance(unwrap_model(self.model), DistillationModel)" in src
    assert src.index("self.set_model_attributes()") < src.index("ModelEMA(self.model)")
    assert '"distill_model"' in inspect.getsource(BaseTrainer.check_resume)  # resume may re-point the teacher


def test_detection_loss_assignment_api():
    """v8DetectionLoss.get_assigned_targets_and_loss returns (5-tuple of assignment, loss vector, items)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    m = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    m.args = get_cfg()
    m.train()
    preds = m(torch.zeros(1, 3, 64, 64))
    assert set(preds) == {"boxes", "scores", "feats"}
    batch = {"batch_idx": torch.zeros(1), "cls": torch.zeros(1, 1), "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.3]])}
    assign, loss, items = m.init_criterion().get_assigned_targets_and_loss(preds, batch)
    assert len(assign) == 5 and assign[0].shape == (1, preds["scores"].shape[-1]) and loss.shape == (3,)
    from yolo_kd.losses import Assignment

    a = Assignment(*assign)  # the field order KDInputs.assign relies on
    n = preds["scores"].shape[-1]
    assert a.fg.dtype is torch.bool and a.gt_idx.shape == (1, n) and a.boxes.shape == (1, n, 4)
    assert a.anchors.shape == (n, 2) and a.stride.shape == (n, 1) and a.boxes[a.fg].max() > 1  # boxes in pixels
    head = m.model[-1]
    assert set(head.one2many) == {"box_head", "cls_head"} and callable(head.forward_head)


def test_cfg_checks_we_work_around():
    """get_cfg rejects unknown override keys (validator), but accepts them in the base cfg (resume)."""
    import pytest
    from ultralytics.cfg import DEFAULT_CFG_DICT, get_cfg

    with pytest.raises(SyntaxError):
        get_cfg(overrides={"method": "mimic"})
    assert get_cfg({**DEFAULT_CFG_DICT, "method": "mimic"}).method == "mimic"


def test_ddp_rebuild_uses_vars_of_args():
    """DDP workers rebuild the trainer from vars(trainer.args) as overrides."""
    from ultralytics.utils.dist import generate_ddp_file

    src = inspect.getsource(generate_ddp_file)
    assert '"args": vars(trainer.args)' in src and "overrides" in src


def test_checkpoint_writes_and_nan_recovery_hooks():
    """AtomicPath relies on save_model writing checkpoints through ``self.last/self.best.write_bytes``; the KD
    NaN roll-back extends ``_handle_nan_recovery(epoch) -> bool``, which reloads last.pt."""
    import inspect

    from ultralytics.engine.trainer import BaseTrainer

    src = inspect.getsource(BaseTrainer.save_model)
    assert "self.last.write_bytes(" in src and "self.best.write_bytes(" in src
    sig = inspect.signature(BaseTrainer._handle_nan_recovery)
    assert list(sig.parameters) == ["self", "epoch"]
    assert "load_checkpoint(self.last)" in inspect.getsource(BaseTrainer._handle_nan_recovery)


def test_preflight_names_the_trainer_of_each_task():
    """preflight's trainer names (kept there so it stays below the trainers in the import graph) are the classes'."""
    from yolo_kd.preflight import TRAINER_NAMES
    from yolo_kd.tasks import TRAINERS

    assert TRAINER_NAMES == {task: cls.__name__ for task, cls in TRAINERS.items()}


def test_every_trainer_hook_we_override_exists_with_its_signature():
    """Each Ultralytics trainer method our mixins override (private ones included) is still there, same parameters.

    A renamed hook would otherwise be silently never called (the unlabeled stream, checkpoints, result columns).
    """
    from ultralytics.models.yolo.detect import DetectionTrainer

    from yolo_kd.tasks import TRAINERS
    from yolo_kd.trainer import KDTrainerMixin

    ours = [c for c in KDTrainerMixin.__mro__ if c.__module__.startswith("yolo_kd")]
    overrides = {n: c for c in ours for n, f in vars(c).items() if callable(f) and hasattr(DetectionTrainer, n)}
    private = {n for n in overrides if n.startswith("_") and not n.startswith("__")}
    assert private == {"_build_train_pipeline", "_close_dataloader_mosaic", "_handle_nan_recovery",
                       "_load_checkpoint_state"}  # fmt: skip
    bases = {next(b for b in t.__mro__ if b.__module__.startswith("ultralytics")) for t in TRAINERS.values()}
    assert bases >= {DetectionTrainer}
    for n, c in overrides.items():
        for base in bases:
            if n != "__init__":
                theirs = inspect.signature(getattr(base, n)).parameters
                assert list(inspect.signature(vars(c)[n]).parameters) == list(theirs), (n, base)
    assert len([n for n in vars(KDTrainerMixin) if n in overrides]) <= 5  # the mixin itself stays a few delegations
