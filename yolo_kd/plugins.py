"""User methods: import the modules that call ``register`` before a method is built (``plugins=``)."""

from __future__ import annotations

from pathlib import Path

from yolo_kd.errors import KDError


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
