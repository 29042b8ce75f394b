"""One exception type for bad user input, so the CLI can print one line and exit non-zero."""

from __future__ import annotations


class KDError(ValueError):
    """Bad input from the user: the message names the problem and the fix, in one line."""
