"""KDTrainerMixin: the KD hooks any Ultralytics task trainer takes; KDTrainer: the detection trainer built on it.

The other tasks' trainers (segment, pose, obb) are in ``yolo_kd.tasks``: each is the mixin over Ultralytics' own
task trainer, as ``SegmentationTrainer`` is ``DetectionTrainer`` plus a few overrides.
"""

from __future__ import annotations

import shutil
from copy import copy
from typing import Any

from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.distill_model import DistillationModel
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK, YAML

from yolo_kd import callbacks, preflight
from yolo_kd.batchnorm import identity_bn_warning
from yolo_kd.cfg import KD_KEYS, split_overrides
from yolo_kd.checkpoint import kd_state
from yolo_kd.checkpoint.atomic import AtomicPath
from yolo_kd.checkpoint.hooks import CheckpointHooks
from yolo_kd.errors import KDError, with_article
from yolo_kd.kd_plots import ResultColumns
from yolo_kd.losses import parse_method
from yolo_kd.model import KDModel
from yolo_kd.paths import resolve_data, resolve_weights
from yolo_kd.pseudo import PseudoLabeler
from yolo_kd.qat import prepare_student_qat
from yolo_kd.teacher import check_teacher, given_teacher_task
from yolo_kd.unlabeled import UnlabeledHooks, resolve_pool


class KDTrainerMixin(CheckpointHooks, UnlabeledHooks, ResultColumns):
    """The KD hooks of a task trainer: a frozen teacher distilled into the student with registry methods.

    Mixed in before an Ultralytics task trainer (``class KDTrainer(KDTrainerMixin, DetectionTrainer)``); every hook
    delegates to ``super()`` and adds only the KD part, so the task's own model, dataset and validator are kept.
    Features own their hooks: checkpoints (``CheckpointHooks``), the unlabeled stream (``UnlabeledHooks``) and the
    result columns (``ResultColumns``); this class overrides four: ``__init__``, ``get_dataset``,
    ``set_model_attributes`` and ``get_validator``.
    """

    kd_task = "detect"  # the Ultralytics task of the trainer this mixin is combined with

    def __init__(self, cfg=DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks=None):
        """Validate KD settings before any run directory exists, then initialise the Ultralytics trainer."""
        overrides = dict(overrides or {})
        t_task = given_teacher_task(overrides, self.kd_task)  # a default may need a teacher of the student's task
        ul, kd = split_overrides(overrides, self.kd_task, t_task)  # method= left out: the student's default
        resume = bool(ul.get("resume"))
        self._teacher = None  # the teacher check_teacher loaded (fresh runs), handed to KDModel; the file on resume
        self.teacher_info: dict | None = None  # its Detect head's nc, names, levels (fresh runs)
        if resume:
            from yolo_kd.checkpoint.resume import resume_target, run_dir

            ul["resume"] = resume_target(ul.get("resume"), ul.pop("model", None))
            ul["save_dir"] = str(run_dir(ul["resume"]))  # the named file's own folder, not the one recorded in it
        else:
            if not kd["teacher"]:
                raise KDError("no teacher given; pass teacher=path/to/teacher.pt (a trained detection checkpoint)")
            ul["model"] = resolve_weights(ul.get("model"), "student") or "yolov8n.yaml"
            safe = bool(kd.get("safe_load"))
            self.teacher_info = check_teacher(resolve_weights(kd["teacher"], "teacher"), ul["model"], safe=safe)
            self._teacher = self.teacher_info.pop("model")  # checked and loaded once; KDModel takes it over
            info = self.teacher_info
            preflight.check_task(self.kd_task, info["task"], ul["model"], kd, info["teacher_task"])
            if not ul.get("data"):
                raise KDError("no data given; pass data=path/to/data.yaml (e.g. data=kitti.yaml after convert)")
        ul["data"] = resolve_data(ul.get("data"))
        self._data_checked = False  # masks, keypoints, angles: checked before the run folder exists
        if self.kd_task != "detect" and not resume:
            self._data_checked = preflight.check_task_data(self.kd_task, ul["data"], self.teacher_info)
        teacher = kd.pop("teacher")
        if teacher:  # on resume an explicit teacher= may point at a moved file; otherwise the checkpoint's is used
            ul["distill_model"] = resolve_weights(teacher, "teacher")
        if resume:  # before anything is written: the teacher (named or recorded) must be the run's own network
            from yolo_kd.checkpoint.resume import check_same_teacher

            check_same_teacher(ul["resume"], ul.get("distill_model"))
        self.kd_spec, self.unlabeled, self._pool = kd.pop("spec"), None, None  # the method, parsed once
        self._unlabeled_args = kd["unlabeled"], kd["pseudo_conf"]  # checked in get_dataset (self.args lacks them)
        self._kd_saved = kd_state.Saved()  # the method's state in the loaded checkpoint: set by setup_model
        super().__init__(cfg, ul, _callbacks)
        if self.resume:  # KD settings come from the checkpoint's train_args
            kd = {k: getattr(self.args, k, v) for k, v in kd.items()}
        for k, v in kd.items():
            setattr(self.args, k, v)
        if self.resume:  # the checkpoint's method, not the default
            self.kd_spec = parse_method(self.args.method, self.args.kd_args)
        if self._pool:  # a folder, a list, a glob, or the data yaml's unlabeled: key
            self.args.unlabeled = self._pool.src
        if RANK in {-1, 0}:
            YAML.save(self.save_dir / "args.yaml", vars(self.args))
            LOGGER.info(
                f"yolo-kd: teacher={self.args.distill_model} method={self.args.method} "
                + " ".join(f"{k}={getattr(self.args, k)}" for k in KD_KEYS[2:] if k != "plugins")
            )
        self.add_callback("on_train_epoch_start", callbacks.update_schedule)
        self.add_callback("on_train_end", callbacks.keep_kd_modules)
        self.add_callback("on_train_end", callbacks.plot_kd)
        from yolo_kd.kd_plots import FREEZE_FILTER

        self.freeze_filter = FREEZE_FILTER  # one process-wide filter: trainers that never train leave nothing behind
        if FREEZE_FILTER not in LOGGER.filters:
            LOGGER.addFilter(FREEZE_FILTER)
        self.add_callback("on_pretrain_routine_start", lambda tr: setattr(tr.freeze_filter, "count", 0))
        self.add_callback("on_pretrain_routine_end", callbacks.say_teacher_frozen)
        # checkpoints are written to a temporary file, then renamed: a kill during a save never truncates last.pt
        self.wdir, self.last, self.best = AtomicPath(self.wdir), AtomicPath(self.last), AtomicPath(self.best)

    def get_dataset(self) -> dict:
        """Load and check the dataset; on a bad one, remove the run directory this trainer just made, then raise.

        Checked: images per split, label class ids, and the teacher's classes for head-based methods.
        """
        try:
            try:
                data = super().get_dataset()
            except RuntimeError as e:  # Ultralytics' "Dataset 'x' error": one line instead of a traceback
                raise KDError(f"{' '.join(str(e).split())}; pass data=path/to/data.yaml (see data/README.md)") from None
            except KeyError as e:  # the pose trainer's missing kpt_shape
                task = with_article(self.kd_task)
                raise KDError(f"{e.args[0] if e.args else e}; {task} student needs {task} dataset") from None
            self._check_data(data)
            if not self.resume:
                src, conf = self._unlabeled_args
                self._pool = resolve_pool(src, data, conf)
        except KDError:
            if _fresh(self.save_dir):
                shutil.rmtree(self.save_dir, ignore_errors=True)
            raise
        return data

    def _check_data(self, data: dict) -> None:
        """Raise KDError for an empty split, a bad label, or a teacher that cannot serve the data (preflight)."""
        if RANK in {-1, 0} and not self.resume and not self._data_checked:
            from yolo_kd.data.check import check_dataset

            check_dataset(data, task=self.kd_task)
        preflight.check_teacher_serves(self.teacher_info, data, self.kd_spec)

    def set_model_attributes(self) -> None:
        """Attach dataset attributes, then wrap the student into a KDModel (before AMP check, DDP and EMA)."""
        model = self.model
        student = model.student_model if isinstance(model, DistillationModel) else model
        self.model = student
        super().set_model_attributes()
        if str(self.args.model).endswith(".pt") and not self.resume:
            if msg := identity_bn_warning(student, self.args.model, self.args.data):
                LOGGER.warning(f"yolo-kd: {msg}")
        if self.args.quantize == 8 and not self.resume:
            student = prepare_student_qat(self, student)
        teacher, self._teacher = self._teacher, None  # the model check_teacher loaded, else the file (resume)
        if teacher is None or teacher.yaml.get("channels", 3) != getattr(student, "yaml", {}).get("channels", 3):
            teacher = self.args.distill_model  # Ultralytics adapts a teacher with other input channels from the file
            if getattr(self.args, "safe_load", False):
                from yolo_kd.checkpoint.safe_load import safe_model

                teacher = safe_model(teacher)
        a = self.args
        kd = KDModel(teacher, student, method=self.kd_spec, balance=getattr(a, "kd_balance", "off"),
                     share=getattr(a, "kd_share", 1.0), balance_every=getattr(a, "kd_balance_every", 20),
                     teacher_precision=getattr(a, "kd_teacher_precision", "fp32"),  # runs from before it: FP32
                     pseudo=PseudoLabeler.from_args(a))  # fmt: skip
        if line := kd_state.restore(kd, self._kd_saved, a.method, a.model):
            LOGGER.info(line)
        if isinstance(model, DistillationModel):
            kd.projector.load_state_dict(model.projector.state_dict())
        self.model = kd

    def get_validator(self):
        """The task trainer's own validator, built while the args hold no KD keys (Ultralytics re-checks every key)."""
        args, self.args = self.args, ultralytics_args(self.args)
        try:
            return super().get_validator()
        finally:
            self.args = args


class KDTrainer(KDTrainerMixin, DetectionTrainer):
    """Detection trainer that distills a frozen teacher into the student with registry methods.

    Takes every Ultralytics train argument plus ``teacher=`` (a detection .pt, stored as Ultralytics'
    ``distill_model``), ``student=`` (alias of ``model=``), ``method=`` ('a+b' combines), ``kd_args=`` or flat
    ``<method>_<param>=`` hyper-parameters, ``kd_decay=`` / ``kd_final=`` / ``kd_close_mosaic=`` and ``plugins=``.

    Examples:
        >>> from yolo_kd import KDTrainer
        >>> KDTrainer(overrides={"teacher": "t.pt", "student": "yolov8n.yaml", "data": "kitti.yaml"}).train()
    """


def ultralytics_args(args):
    """Copy of the trainer args without yolo-kd's keys, for Ultralytics components that re-check every key."""
    args = copy(args)
    for k in KD_KEYS:
        args.__dict__.pop(k, None)
    return args


def _fresh(save_dir) -> bool:
    """True if a run directory holds nothing but what the trainer's __init__ wrote (args.yaml, empty weights/)."""
    files = [p for p in save_dir.rglob("*") if p.is_file()]
    return all(p.name == "args.yaml" for p in files)
