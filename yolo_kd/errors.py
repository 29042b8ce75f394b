"""One exception type for bad user input, so the CLI can print one line and exit non-zero, and the key check."""

from __future__ import annotations

from typing import Any


class KDError(ValueError):
    """Bad input from the user: the message names the problem and the fix, in one line."""


def with_article(word: str) -> str:
    """``word`` with its indefinite article, for messages naming a task: 'a detect', 'an obb'."""
    return f"{'an' if word[:1] in 'aeio' else 'a'} {word}"


def check_keys(kv: dict[str, Any], allowed: Any, cmd: str) -> None:
    """One line with a did-you-mean for a key of ``kv`` that is not in ``allowed``."""
    from difflib import get_close_matches

    for k in kv:
        if k not in allowed:
            hint = get_close_matches(k, list(allowed), n=1)
            hint = f" Did you mean '{hint[0]}'?" if hint else ""
            raise KDError(f"'{k}' is not a key of `yolo-kd {cmd}`.{hint} Valid: {', '.join(allowed)}")
