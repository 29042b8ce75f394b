"""KD arguments: defaults, parsing from flat key=value overrides, and local look-up of named files."""

from __future__ import annotations

from copy import deepcopy
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError

ROOT = Path(__file__).resolve().parents[1]  # repository root (weights/) in a source checkout
DATASETS = Path(__file__).resolve().parent / "datasets"  # dataset yamls shipped with the package
KD_DEFAULTS: dict[str, Any] = {
    "teacher": None,  # path to a detection .pt; stored as Ultralytics' own distill_model key
    "method": "crosskd",  # registry keys joined by "+"; the best method measured so far (docs/benchmarks.md 0)
    "kd_args": {},  # {method: {param: value}}; flat form: <method>_<param>=value
    "kd_decay": "constant",  # constant | linear | cosine
    "kd_final": 0.1,  # fraction of the KD weight left at the end of linear/cosine decay
    "kd_close_mosaic": False,  # switch KD off during the final close_mosaic epochs
    "kd_balance": "off",  # off | auto: each term follows kd_share x the detection gradient (yolo_kd/balance.py)
    "kd_share": 1.0,  # kd_balance=auto target gradient share, one number or {term: share}
    "kd_balance_every": 20,  # kd_balance=auto measures every N training steps
    "kd_teacher_precision": "fp32",  # fp32 | auto | fp16 | bf16: the frozen teacher's forward, checked against FP32
    "unlabeled": None,  # images without labels (folder, .txt list or glob): teacher pseudo-labels + KD on them
    "unlabeled_ratio": 1.0,  # unlabeled images per labeled image in a batch
    "pseudo_conf": 0.5,  # teacher confidence for a pseudo-label: one number or one per class (data order)
    "pseudo_iou": 0.7,  # NMS IoU for pseudo-labels
    "pseudo_max": 100,  # pseudo-labels per image at most
    "pseudo_weight": 1.0,  # weight of the unlabeled images' detection loss (pseudo-labels) vs the labeled ones'
    "plugins": [],  # modules to import before building the method (user methods calling register())
    "safe_load": False,  # read teacher and student .pt with torch.load(weights_only=True) + a layer allowlist
}
KD_KEYS = tuple(KD_DEFAULTS)
DECAYS = ("constant", "linear", "cosine")


def import_plugins(plugins: list[str] | str | None) -> None:
    """Import user modules that register methods (``plugins=my_at``, ``plugins=path/my_at.py`` or a list).

    A ``.py`` path is loaded as module ``<stem>`` from that file (registered in ``sys.modules`` so its classes
    pickle), without putting its folder on ``sys.path``.
    """
    import importlib
    import importlib.util
    import sys

    for name in [plugins] if isinstance(plugins, str) else plugins or []:
        p = Path(name)
        try:
            if p.suffix != ".py":
                importlib.import_module(name)
                continue
            if p.stem in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(p.stem, p.resolve())
            if spec is None or not p.exists():
                raise ImportError(f"no file {p}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[p.stem] = module
            spec.loader.exec_module(module)
        except ImportError as e:
            sys.modules.pop(p.stem, None) if p.suffix == ".py" else None
            msg = f"plugin '{name}' could not be imported ({e}); pass an importable module or a .py path"
            raise KDError(msg) from e


def find_file(name: str | Path, kind: str, dirs: tuple[Path, ...]) -> Path:
    """Return ``name`` if it exists, else the first match in ``dirs``; raise a one-line error otherwise."""
    p = Path(name).expanduser()
    if p.exists():
        return p
    for d in dirs:
        if (d / p.name).exists():
            return d / p.name
    where = ", ".join(str(d) for d in (Path.cwd(), *dirs))
    if p.name == str(name) and official(p.name):
        if not offline():
            from ultralytics.utils.downloads import attempt_download_asset

            return Path(attempt_download_asset(p.name))  # as Ultralytics does for its own weight names
        why = "it is an official Ultralytics name, but this machine is offline (or YOLO_OFFLINE is set)"
    else:
        why = "it is not an official Ultralytics weight name that could be downloaded"
    raise KDError(f"{kind} '{name}' not found (looked in {where}); {why}. Put the file in weights/ or pass its path.")


def official(name: str) -> bool:
    """True for Ultralytics' downloadable weight names (``yolov8l.pt``, ``yolo26n.pt`` ...)."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    return name in GITHUB_ASSETS_NAMES


def offline() -> bool:
    """True when downloads cannot or must not happen (``YOLO_OFFLINE=1`` or no network)."""
    import os

    from ultralytics.utils import ONLINE

    return os.environ.get("YOLO_OFFLINE", "").lower() in {"1", "true", "yes"} or not ONLINE


def resolve_data(data: str | None) -> str | None:
    """Resolve a dataset yaml: a path as given, else one shipped with yolo-kd (``kitti.yaml``, ``coco-traffic.yaml``).

    The shipped yamls point at ``data/<name>`` relative to the working directory (where ``yolo-kd convert ...
    dst=data/<name>`` writes it); when that folder is missing the error says so and how to make it, instead of
    Ultralytics' datasets-folder message. Other names are left to Ultralytics.
    """
    if not data or Path(data).exists() or not str(data).endswith((".yaml", ".yml")):
        return data
    shipped = DATASETS / Path(data).name
    if not shipped.exists():
        return data
    import yaml

    rel = Path(yaml.safe_load(shipped.read_text())["path"])
    if not (Path.cwd() / rel).is_dir():
        raise KDError(
            f"{Path(data).name} reads the dataset from {rel}/ under the working directory, and {Path.cwd() / rel} does "
            f"not exist; run `yolo-kd convert {shipped.stem} src=... dst={rel}` here (data/README.md), or pass "
            "data=<dst>/data.yaml written by convert"
        )
    return str(shipped)


def resolve_weights(name: str | None, kind: str) -> str | None:
    """Resolve a ``.pt`` name via the working directory and weights/; yaml names are left to Ultralytics."""
    if name is None or not str(name).endswith(".pt"):
        return name
    return str(find_file(name, kind, (Path.cwd() / "weights", ROOT / "weights")))


def split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split flat overrides into (Ultralytics overrides, KD settings), validating KD keys.

    Handles the aliases ``student=`` (``model=``) and ``teacher=`` (Ultralytics' ``distill_model=``), the flat
    per-method form ``<method>_<param>=value``, and gives a 'did you mean' error for unknown keys.
    """
    from ultralytics.cfg import DEFAULT_CFG_DICT

    from yolo_kd.losses import LOSSES, check_method_args

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
    if kd["kd_decay"] not in DECAYS:
        raise KDError(f"kd_decay='{kd['kd_decay']}' is not one of {', '.join(DECAYS)}")
    if kd["kd_teacher_precision"] not in ("fp32", "auto", "fp16", "bf16"):
        raise KDError(f"kd_teacher_precision='{kd['kd_teacher_precision']}' is not one of fp32, auto, fp16, bf16")
    if kd["kd_balance"] not in ("off", "auto"):
        raise KDError(f"kd_balance='{kd['kd_balance']}' is not one of off, auto")
    shares = kd["kd_share"].values() if isinstance(kd["kd_share"], dict) else [kd["kd_share"]]
    if not all(isinstance(v, (int, float)) and v > 0 for v in shares):
        raise KDError(f"kd_share={kd['kd_share']!r} must be a positive number or {{term: positive number}}")
    check_pseudo(kd)
    if not 0 <= float(kd["kd_final"]) <= 1:
        raise KDError(f"kd_final={kd['kd_final']} must be in [0, 1]")
    if not isinstance(kd["kd_args"], dict):
        raise KDError(f"kd_args must be a dict like {{'mimic': {{'weight': 2.0}}}}, got {kd['kd_args']!r}")
    merged = {m: dict(p) for m, p in kd["kd_args"].items()}
    for m, p in flat.items():
        merged.setdefault(m, {}).update(p)
    kd["kd_args"] = check_method_args(kd["method"], merged)
    _try_build(kd["method"], kd["kd_args"])
    return ul, kd


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


def _try_build(method: str, kd_args: dict[str, Any]) -> None:
    """Build the method once on tiny channel counts so bad option values fail now, before any run directory."""
    from yolo_kd.losses import build_loss

    try:
        build_loss(method, kd_args, [8, 8, 8], [8, 8, 8])
    except KDError:
        raise
    except (TypeError, ValueError) as e:
        raise KDError(f"bad value in the arguments of method '{method}' ({kd_args}): {e}") from None


def kd_scale(progress: float, decay: str, final: float) -> float:
    """Distillation-weight multiplier at training progress ``progress`` in [0, 1] (1 at the start)."""
    import math

    p = min(max(progress, 0.0), 1.0)
    if decay == "linear":
        return 1.0 - (1.0 - final) * p
    if decay == "cosine":
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * p))
    return 1.0
