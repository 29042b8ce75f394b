"""The method registry: a plain dict from key to loss class, ``register``, and ``MethodSpec``.

A ``MethodSpec`` is a method string parsed once (keys, checked options, what the methods require); it builds the loss.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from difflib import get_close_matches

from yolo_kd.errors import KDError
from yolo_kd.losses.base import REQUIRES, Combined, DistillLoss

OLD_FLAGS = ("uses_head", "needs_grads", "needs_heads", "axis_aligned", "reg_max_required")  # before ``requires``

LOSSES: dict[str, type[DistillLoss]] = {}


def register(name: str):
    """Class decorator adding a DistillLoss subclass to ``LOSSES`` under ``name`` (no '+', '_' or duplicates).

    The class gets ``key = name`` and, when it declares no ``names``, ``names = (name,)``; its terms are checked
    against ``names`` on the first batch (``DistillLoss.check``).
    """

    def wrap(cls: type[DistillLoss]) -> type[DistillLoss]:
        if not name.isidentifier() or "_" in name or not name.islower():
            raise KDError(f"method key '{name}' must be a lowercase identifier without '_' (it prefixes loss names)")
        if name in LOSSES and LOSSES[name] is not cls:
            raise KDError(f"method '{name}' is already registered by {LOSSES[name].__name__}; choose another key")
        if unknown := set(cls.requires) - set(REQUIRES):
            raise KDError(f"method '{name}' requires {sorted(unknown)}, unknown; choose from {', '.join(REQUIRES)}")
        if old := [f for f in OLD_FLAGS if getattr(cls, f, False)]:
            raise KDError(f"method '{name}' sets {', '.join(old)}; declare requires = frozenset({{...}}) with keys "
                          f"from {', '.join(REQUIRES)} instead")  # fmt: skip
        LOSSES[name] = cls
        cls.key = name
        if not cls.names:
            cls.names = (name,)
        return cls

    return wrap


def split_method(method: str) -> list[str]:
    """Split ``'a+b'`` into registry keys, raising a 'did you mean' error for unknown ones."""
    keys = [k.strip() for k in str(method).split("+") if k.strip()]
    if not keys:
        raise KDError("method is empty; pass e.g. method=mimic (see `yolo-kd methods`)")
    for k in keys:
        if k not in LOSSES:
            hint = get_close_matches(k, LOSSES, n=1)
            hint = f" Did you mean '{hint[0]}'?" if hint else ""
            raise KDError(f"unknown method '{k}'.{hint} Available: {', '.join(sorted(LOSSES))}")
    if len(set(keys)) != len(keys):
        raise KDError(f"method '{method}' lists a method twice; list each once")
    return keys


def method_params(key: str) -> dict[str, object]:
    """Return the hyper-parameters of a method with their defaults (keyword arguments of its ``__init__``)."""
    sig = inspect.signature(LOSSES[key].__init__)
    skip = {"self", "s_channels", "t_channels"}
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return {n: p.default for n, p in sig.parameters.items() if n not in skip and p.kind in kinds}


def check_method_args(keys: list[str], kd_args: dict | None) -> dict[str, dict]:
    """Validate ``{method_key: {param: value}}`` against the methods' signatures; return a normalised copy."""
    method = "+".join(keys)
    out: dict[str, dict] = {k: {} for k in keys}
    for k, params in (kd_args or {}).items():
        if k not in keys:
            raise KDError(f"kd_args has settings for '{k}', which is not in method={method}; remove them or add it")
        if not isinstance(params, dict):
            raise KDError(f"kd_args['{k}'] must be a dict of parameters, e.g. {{'weight': 2.0}}, got {params!r}")
        known = method_params(k)
        for p, v in params.items():
            if p not in known:
                hint = get_close_matches(p, known, n=1)
                hint = f" Did you mean '{k}_{hint[0]}'?" if hint else ""
                raise KDError(f"'{p}' is not a parameter of method '{k}'.{hint} Valid: {', '.join(known) or 'none'}")
            check_value(k, p, v, known[p])
            out[k][p] = v
        LOSSES[k].check_args({**known, **out[k]})
    return out


def check_value(key: str, param: str, value: object, default: object) -> None:
    """Refuse a value whose type or sign does not fit its default (one rule for every method, plugins included).

    A number where the default is a number (>= 0 when the default is >= 0; > 0 for ``tau`` / ``temperature``), a
    bool where it is a bool; method-specific choices (strings, ranges) are checked by the method's ``__init__``.
    """
    name = f"{key}_{param}={value!r}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise KDError(f"{name} must be true or false")
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise KDError(f"{name} must be a number")
        if param in {"tau", "temperature"} and value <= 0:
            raise KDError(f"{name} must be > 0")
        if default >= 0 and value < 0:
            raise KDError(f"{name} is negative; {key}'s {param} must be >= 0")


@dataclass(frozen=True)
class MethodSpec:
    """A method string parsed once: its registry keys in order and their checked options; builds the loss.

    Attributes:
        keys (tuple[str, ...]): Registry keys, ``("gkd", "bmfi")`` for ``method=gkd+bmfi``.
        args (dict[str, dict]): The options given per key (defaults left out), checked against each signature.
    """

    keys: tuple[str, ...]
    args: dict[str, dict] = field(default_factory=dict, hash=False)

    @property
    def name(self) -> str:
        """The method string, ``'a+b'``."""
        return "+".join(self.keys)

    @property
    def requires(self) -> frozenset[str]:
        """The union of the methods' ``requires`` (see ``base.REQUIRES``)."""
        return frozenset().union(*(LOSSES[k].requires for k in self.keys))

    @property
    def needs_classes(self) -> bool:
        """Whether a method reads class-dependent teacher outputs (head scores or its detection loss).

        Such methods need the teacher's classes to correspond to the data's (same, or matched by name); pure feature
        methods (mimic, bmfi, cwd, ...) do not.
        """
        return bool(self.requires & {"scores", "task_loss"})

    def build(self, s_channels: list[int], t_channels: list[int]) -> DistillLoss:
        """Instantiate the method(s) for these channel counts per level (``a+b``: ``Combined``)."""
        parts = {k: LOSSES[k](s_channels, t_channels, **self.args.get(k, {})) for k in self.keys}
        return next(iter(parts.values())) if len(parts) == 1 else Combined(parts)


def parse_method(method: str | MethodSpec, kd_args: dict | None = None) -> MethodSpec:
    """Parse ``'a+b'`` and its options once: unknown keys, parameters and values fail here in one line."""
    if isinstance(method, MethodSpec):
        return method
    keys = split_method(method)
    return MethodSpec(tuple(keys), check_method_args(keys, kd_args))


def build_loss(method: str, kd_args: dict, s_channels: list[int], t_channels: list[int]) -> DistillLoss:
    """Parse ``method`` with its options and build it (``parse_method(...).build``)."""
    return parse_method(method, kd_args).build(s_channels, t_channels)


def describe() -> list[tuple[str, str]]:
    """Return ``(key, first docstring line)`` for every registered method, sorted by key."""
    return [(k, (LOSSES[k].__doc__ or "").strip().splitlines()[0]) for k in sorted(LOSSES)]


def methods_markdown() -> str:
    """The README's methods table: one row per method, its class docstring's first line (the one source)."""
    rows = [f"| `{k}` | {doc} |" for k, doc in describe()]
    return "\n".join(["| method | what it distils (paper) |", "|---|---|", *rows])
