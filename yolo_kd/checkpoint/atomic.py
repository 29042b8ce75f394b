"""Atomic checkpoint writes: a kill during a save never leaves a truncated file behind."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any


class AtomicPath(type(Path())):
    """Path whose ``write_bytes`` is atomic (temporary file, fsync, rename), for the checkpoints Ultralytics writes."""

    def write_bytes(self, data) -> int:
        """Write ``data`` next to the target, then atomically replace the target with it.

        A failed write (a full disk, a read-only folder) removes its temporary file and leaves the target as it was.
        """
        tmp = self.with_name(f".{self.name}.tmp")
        try:
            with open(tmp, "wb") as f:
                n = f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return n


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` through :class:`AtomicPath`."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    AtomicPath(path).write_bytes(buf.getvalue())
