"""The protocol the runtime's backends follow (export metadata, input buffers, the model call), one file each.

``runtime.open_backend`` picks one from the model path: an ``*_openvino_model`` folder or its ``.xml`` runs on
OpenVINO (``backend_openvino``), a ``.onnx`` file on ONNX Runtime (``backend_onnx``). None imports torch or ultralytics.
"""

from __future__ import annotations

import ast
from typing import Protocol

import numpy as np


class Request(Protocol):
    """One inference in flight at a time, with its own input array where the input shape is fixed."""

    buffer: np.ndarray | None  # the request's own input, written in place before ``run``/``start`` without ``x``

    def run(self, x: np.ndarray | None = None) -> list[np.ndarray]:
        """Synchronous inference on ``x`` (or on ``buffer``); the outputs stay valid until the next call."""

    def start(self, x: np.ndarray | None = None) -> None:
        """Start inference on ``x`` (or on ``buffer``) and return at once."""

    def wait(self) -> list[np.ndarray]:
        """Wait for the started inference; its outputs."""


class Backend(Protocol):
    """A compiled model: Ultralytics' export metadata, requests, and the bare model call."""

    meta: dict  # names, imgsz, task, end2end, ... with Ultralytics' types (dicts and lists, not strings)
    name: str  # "openvino" or "onnxruntime"

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """The bare model call on a prepared input (benchmarks' reference); outputs valid until the next call."""

    def request(self) -> Request:
        """A new request with its own input buffer."""

    def requests_wanted(self) -> int:
        """How many requests in flight the device asks for (throughput mode)."""


def typed_meta(meta: dict) -> dict:
    """Ultralytics' export metadata with its values typed as ``AutoBackend`` types them (ONNX stores strings)."""
    out = dict(meta)
    for k, v in meta.items():
        if k in {"stride", "batch", "channels"}:
            out[k] = int(v)
        elif k in {"imgsz", "names", "kpt_shape", "kpt_names", "args", "end2end"} and isinstance(v, str):
            out[k] = ast.literal_eval(v)
    return out
