"""Where named files are found: weights in the working directory or weights/, the dataset yamls yolo-kd ships."""

from __future__ import annotations

from pathlib import Path

from yolo_kd.errors import KDError

ROOT = Path(__file__).resolve().parents[1]  # the repository root in a source checkout; site-packages when installed
DATASETS = Path(__file__).resolve().parent / "datasets"  # dataset yamls shipped with the package


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
    checkout = (ROOT / "pyproject.toml").exists()  # an installed package has no weights/ of its own
    return str(find_file(name, kind, (Path.cwd() / "weights", *((ROOT / "weights",) if checkout else ()))))
