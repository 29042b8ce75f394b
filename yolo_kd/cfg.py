"""KD arguments: defaults, and parsing flat key=value overrides into normalised, validated arguments."""

from __future__ import annotations

from copy import deepcopy
from difflib import get_close_matches
from typing import Any

from yolo_kd import teacher_precision
from yolo_kd.errors import KDError
from yolo_kd.plugins import import_plugins

KD_DEFAULTS: dict[str, Any] = {
    "teacher": None,  # path to a detection .pt; stored as Ultralytics' own distill_model key
    "method": "crosskd",  # registry keys joined by "+"; the default, named here (per task and .pt student: below)
    "kd_args": {},  # {method: {param: value}}; flat form: <method>_<param>=value
    "kd_decay": "constant",  # constant | linear | cosine
    "kd_final": 0.1,  # fraction of the KD weight left at the end of linear/cosine decay
    "kd_close_mosaic": False,  # switch KD off during the final close_mosaic epochs
    "kd_balance": "off",  # off | auto: each term follows kd_share x the detection gradient (yolo_kd/balance.py)
    "kd_share": 1.0,  # kd_balance=auto target gradient share, one number or {term: share}
    "kd_balance_every": 20,  # kd_balance=auto measures every N training steps
    "kd_teacher_precision": "auto",  # fp32 | auto | fp16 | bf16: the teacher forward, parity-checked (benchmarks D4)
    "unlabeled": None,  # images without labels (folder, .txt list or glob): teacher pseudo-labels + KD on them
    "unlabeled_ratio": 2.0,  # unlabeled images per labeled image in a batch (2 beat 1 on 12 of 12 seeds, section UR)
    "pseudo_conf": 0.5,  # teacher confidence for a pseudo-label: one number or one per class (data order)
    "pseudo_iou": 0.7,  # NMS IoU for pseudo-labels
    "pseudo_max": 100,  # pseudo-labels per image at most
    "pseudo_weight": 1.0,  # weight of the unlabeled images' detection loss (pseudo-labels) vs the labeled ones'
    "plugins": [],  # modules to import before building the method (user methods calling register())
    "safe_load": False,  # read teacher and student .pt with torch.load(weights_only=True) + a layer allowlist
}
KD_KEYS = tuple(KD_DEFAULTS)
DECAYS = ("constant", "linear", "cosine")


# method options for a student that starts from weights (``student=*.pt``) unless given: crosskd's weight 20 was set
# for from-scratch students (D-series, synthetic 160 px); on real photos with a COCO-pretrained student it dominates
# fine-tuning (R1: cls term 6.5x the detection gradient at 320 px) and weight 3 beat it on fresh seeds (R8: +3.49
# [+1.25, +5.73] mAP50-95, docs/experiments/R8-crosskd-weight-pretrained-fresh-seeds.md). Saved in the run's kd_args.
PRETRAINED_ARGS: dict[str, dict[str, Any]] = {"crosskd": {"weight": 3.0}}

# the default method of a task whose student cannot take KD_DEFAULTS' (crosskd reads the axis-aligned box branch an
# obb head rotates): cwd won on fresh seeds there (T4, docs/experiments/T4-cwd-for-obb-fresh-seeds.md)
TASK_METHODS: dict[str, str] = {"obb": "cwd"}

# the default method, with its options, of a detection student that starts from weights (``student=*.pt``) trained
# on labels alone when method= is left out: Ultralytics' score-weighted neck L2 at twice its weight beat crosskd
# (weight 3) and plain fine-tuning on 8 fresh seeds of real photos (R14,
# docs/experiments/R14-default-for-pretrained-students-8-seeds.md). ``method=builtin`` given by name keeps Ultralytics'
# weight 6. With ``unlabeled=`` crosskd stays (R7: +4.0 over plain fine-tuning; builtin never ran on a pool). A seg
# student from a .pt taught by a seg teacher gets maskkd alone: it beat crosskd (weight 3) and plain fine-tuning on
# real photos on fresh seeds (T10, T11: docs/experiments/T11-maskkd-seg-default-fresh-seeds.md); a pose student from
# a .pt taught by a pose teacher gets kptkd alone, for the same reason on real salmon frames (T12, T13:
# docs/experiments/T13-kptkd-pose-default-fresh-seeds.md). With a detection teacher (no masks, no keypoints) both keep
# crosskd at 3.
PRETRAINED_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "detect": ("builtin", {"weight": 12.0}),
    "segment": ("maskkd", {}),
    "pose": ("kptkd", {}),
}


def default_method(
    task: str, student: Any, unlabeled: Any = None, teacher_task: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The method (and its options) a run of ``task`` trains with when method= is left out.

    Args:
        task: The student's Ultralytics task.
        student: The student given (``*.pt`` starts from weights; a ``.yaml`` or nothing from scratch).
        unlabeled: The ``unlabeled=`` images, if any.
        teacher_task: The teacher's task once it is loaded; None reads as the student's (a task default such as
            maskkd needs a teacher of the task).

    Returns:
        (method string, options of that method): the task's own default, else a labels-only ``.pt`` student's taught
        by a teacher of its task (any teacher for detection), else KD_DEFAULTS'.
    """
    if task in TASK_METHODS:
        return TASK_METHODS[task], {}
    same = teacher_task in (None, task)
    if str(student or "").endswith(".pt") and not unlabeled and same and task in PRETRAINED_METHODS:
        return PRETRAINED_METHODS[task]
    return KD_DEFAULTS["method"], {}


def split_overrides(
    overrides: dict[str, Any], task: str = "detect", teacher_task: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split flat overrides into (Ultralytics overrides, KD settings), validating KD keys.

    The method string is parsed here, once: ``kd["method"]`` is its normalised string, ``kd["kd_args"]`` its checked
    options and ``kd["spec"]`` the ``MethodSpec`` itself (the trainer takes it out before the settings become args).

    Handles the aliases ``student=`` (``model=``) and ``teacher=`` (Ultralytics' ``distill_model=``), the flat
    per-method form ``<method>_<param>=value``, and gives a 'did you mean' error for unknown keys. ``teacher_task``
    is the loaded teacher's task (None: the student's), which the default method may depend on.
    """
    from ultralytics.cfg import DEFAULT_CFG_DICT

    from yolo_kd.losses import LOSSES, parse_method

    ul, kd = {}, deepcopy(KD_DEFAULTS)
    flat: dict[str, dict[str, Any]] = {}
    import_plugins(overrides.get("plugins"))
    for k, v in overrides.items():
        if k == "student":
            ul["model"] = v
        elif k in ("teacher", "distill_model"):
            kd["teacher"] = v
        elif k in KD_KEYS:
            kd[k] = v
        elif k in DEFAULT_CFG_DICT or k in {"augmentations", "save_dir"}:
            ul[k] = v
        elif "_" in k and k.split("_", 1)[0] in LOSSES:
            m, p = k.split("_", 1)
            flat.setdefault(m, {})[p] = v
        else:
            hint = get_close_matches(k, [*DEFAULT_CFG_DICT, *KD_KEYS, "student"], n=1)
            hint = f" Did you mean '{hint[0]}'?" if hint else ""
            raise KDError(f"'{k}' is not a valid yolo-kd argument.{hint} See `yolo-kd help`.")
    check_ultralytics(ul)
    left_out = "method" not in overrides
    fresh_pt = str(ul.get("model", "")).endswith(".pt") and not ul.get("resume")  # a student that starts from weights
    defaults: dict[str, Any] = {}  # options of a default method, where it has its own (given ones win)
    if left_out and not ul.get("resume"):  # a resume keeps the checkpoint's method
        kd["method"], defaults = default_method(task, ul.get("model"), kd["unlabeled"], teacher_task)
    if kd["method"] is None or not str(kd["method"]).strip():
        pick = default_method(task, ul.get("model"), kd["unlabeled"], teacher_task)[0]
        raise KDError(f"method= is empty; leave it out for the default ({pick} for this student) or name one, e.g. "
                      "method=gkd+bmfi (see `yolo-kd methods`)")  # fmt: skip
    if kd["kd_decay"] not in DECAYS:
        raise KDError(f"kd_decay='{kd['kd_decay']}' is not one of {', '.join(DECAYS)}")
    teacher_precision.check(kd["kd_teacher_precision"])
    if kd["kd_balance"] not in ("off", "auto"):
        raise KDError(f"kd_balance='{kd['kd_balance']}' is not one of off, auto")
    shares = kd["kd_share"].values() if isinstance(kd["kd_share"], dict) else [kd["kd_share"]]
    if not all(isinstance(v, (int, float)) and v > 0 for v in shares):
        raise KDError(f"kd_share={kd['kd_share']!r} must be a positive number or {{term: positive number}}")
    for key, kind in (("pseudo_iou", float), ("pseudo_max", int), ("unlabeled_ratio", float),
                      ("pseudo_weight", float), ("kd_final", float), ("kd_balance_every", int)):  # fmt: skip
        kd[key] = _number(kd, key, kind)
    check_pseudo(kd)
    if kd["safe_load"] not in (True, False):  # as Ultralytics' own bool arguments: true/false (or 1/0)
        raise KDError(f"safe_load={kd['safe_load']!r} must be true or false")
    kd["safe_load"] = bool(kd["safe_load"])
    if not 0 <= float(kd["kd_final"]) <= 1:
        raise KDError(f"kd_final={kd['kd_final']} must be in [0, 1]")
    if not isinstance(kd["kd_args"], dict):
        raise KDError(f"kd_args must be a dict like {{'mimic': {{'weight': 2.0}}}}, got {kd['kd_args']!r}")
    if bad := [m for m, p in kd["kd_args"].items() if not isinstance(p, dict)]:
        raise KDError(f"kd_args[{bad[0]!r}] = {kd['kd_args'][bad[0]]!r} must be a dict of that method's parameters, "
                      f"e.g. kd_args=\"{{{bad[0]}: {{weight: 2.0}}}}\"")  # fmt: skip
    merged = {m: dict(p) for m, p in kd["kd_args"].items()}
    for m, p in flat.items():
        merged.setdefault(m, {}).update(p)
    chosen = str(kd["method"]).split("+")
    if left_out and (extra := [m for m in merged if m not in chosen]):
        raise KDError(f"{extra[0]} settings given without method=; the default for this student is {kd['method']}: "
                      f"add method={extra[0]} or drop them")  # fmt: skip
    fills = dict(PRETRAINED_ARGS) if fresh_pt else {}  # options filled in where not given: a .pt student's, ...
    if defaults:  # ... and the default method's own
        fills[kd["method"]] = {**fills.get(kd["method"], {}), **defaults}
    for m in (m for m in chosen if m in fills):
        merged.setdefault(m, {}).update({k: v for k, v in fills[m].items() if k not in merged[m]})
    spec = parse_method(kd["method"], merged)  # unknown keys, parameters and values: one line, nothing built
    kd["method"], kd["kd_args"], kd["spec"] = spec.name, spec.args, spec
    return ul, kd


OPTIMIZERS = ("auto", "SGD", "MuSGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSprop")  # Ultralytics' own list


def check_ultralytics(ul: dict[str, Any]) -> None:
    """Ultralytics' own type and range checks of its train arguments, plus sizes and devices, as one-line errors.

    Ultralytics raises these mid-start-up as tracebacks (``epochs=abc``, ``fraction=0``) or fails later
    (``imgsz=-1`` in a tensor constructor, ``device=0`` on a machine without a GPU); checked here before any work.
    """
    from ultralytics.cfg import check_cfg

    try:
        check_cfg(dict(ul), hard=True)
    except (TypeError, ValueError) as e:
        why = " ".join(str(e).split()).rstrip(".")
        raise KDError(f"{why}; see `yolo task=detect mode=train help` for its arguments") from None
    opt = ul.get("optimizer")
    if opt is not None and str(opt) not in OPTIMIZERS:
        from difflib import get_close_matches

        hint = get_close_matches(str(opt), OPTIMIZERS, n=1)
        raise KDError(
            f"optimizer={opt} is not one of {', '.join(OPTIMIZERS)}" + (f"; did you mean {hint[0]}?" if hint else "")
        )
    size = ul.get("imgsz")
    sizes = size if isinstance(size, (list, tuple)) else [size]
    if size is not None and not all(isinstance(v, (int, float)) and v >= 32 for v in sizes):
        raise KDError(f"imgsz={size!r} must be a size in pixels, at least 32 (e.g. imgsz=640)")
    dev = str(ul.get("device") if ul.get("device") is not None else "").strip().lower()
    if dev and dev not in {"cpu", "mps"} and not dev.startswith("-1"):
        import torch

        n = torch.cuda.device_count()
        want = [int(d) for d in dev.replace("cuda:", "").split(",") if d.strip().isdigit()]
        if n == 0 or any(d >= n for d in want):
            raise KDError(f"device={ul['device']} asks for CUDA GPU(s) but torch sees {n}; pass device=cpu")


def whole(v: Any, key: str, cmd: str, low: int = 1, example: int | None = None) -> int:
    """``v`` as a whole number >= ``low``, or one line naming the command's key and what it takes."""
    try:
        n = int(v)
        if isinstance(v, (bool, float)) or n < low:  # 8.0 or True is not a count
            raise ValueError
    except (TypeError, ValueError):
        what = "a positive whole number" if low == 1 else f"a whole number >= {low}"
        raise KDError(f"{cmd} {key}={v!r} must be {what} (e.g. {key}={example or max(low, 8)})") from None
    return n


def flag(v: Any, key: str, cmd: str) -> bool:
    """``v`` as True/False (YAML already parsed ``true``/``false``), or one line naming the key."""
    if not isinstance(v, bool):
        raise KDError(f"{cmd} {key}={v!r} must be True or False")
    return v


def _number(kd: dict[str, Any], key: str, kind: type = float) -> float:
    """``kd[key]`` as a number, or one line naming the key and what it takes."""
    try:
        return kind(kd[key])
    except (TypeError, ValueError):
        raise KDError(f"{key}={kd[key]!r} is not a{'n integer' if kind is int else ' number'}") from None


def check_pseudo(kd: dict[str, Any]) -> None:
    """One-line errors for the unlabeled-image settings."""
    conf = kd["pseudo_conf"] if isinstance(kd["pseudo_conf"], (list, tuple)) else [kd["pseudo_conf"]]
    if not all(isinstance(c, (int, float)) and 0 < c <= 1 for c in conf):
        raise KDError(f"pseudo_conf={kd['pseudo_conf']!r} must be in (0, 1], one number or one per class")
    if not 0 < float(kd["pseudo_iou"]) <= 1 or int(kd["pseudo_max"]) < 1:
        raise KDError(f"pseudo_iou={kd['pseudo_iou']} must be in (0, 1] and pseudo_max={kd['pseudo_max']} >= 1")
    if float(kd["unlabeled_ratio"]) <= 0 or float(kd["pseudo_weight"]) < 0:
        raise KDError(
            f"unlabeled_ratio={kd['unlabeled_ratio']} must be > 0 and pseudo_weight={kd['pseudo_weight']} >= 0"
        )
