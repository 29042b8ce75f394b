"""Match teacher and student classes by name, so head-based methods work when the teacher knows more classes."""

from __future__ import annotations

from yolo_kd.errors import KDError


def _norm(name: str) -> str:
    """Case- and separator-insensitive class name ('Traffic_Light' == 'traffic light')."""
    return str(name).lower().replace("_", " ").replace("-", " ").strip()


def class_map(teacher_names: dict | list, student_names: dict | list) -> list[int]:
    """For each student class (in order), the index of the teacher class with the same name, or -1.

    Raises:
        KDError: When no student class name matches a teacher class.
    """
    t = teacher_names if isinstance(teacher_names, dict) else dict(enumerate(teacher_names))
    s = student_names if isinstance(student_names, dict) else dict(enumerate(student_names))
    index = {_norm(v): int(k) for k, v in t.items()}
    out = [index.get(_norm(s[k]), -1) for k in sorted(s)]
    if all(i < 0 for i in out):
        raise KDError(
            f"no student class name matches a teacher class (student {list(s.values())[:5]}..., teacher "
            f"{list(t.values())[:5]}...); fine-tune the teacher on this data or use a feature method (mimic, gkd, bmfi)"
        )
    return out


def describe_map(mapping: list[int], student_names: dict | list) -> str:
    """One line saying which classes are distilled and which are not."""
    s = student_names if isinstance(student_names, dict) else dict(enumerate(student_names))
    names = [s[k] for k in sorted(s)]
    missing = [n for n, i in zip(names, mapping) if i < 0]
    line = f"class mapping by name: {len(names) - len(missing)}/{len(names)} student classes found in the teacher"
    return line + (f"; not distilled (no teacher class): {missing}" if missing else "")
