"""The runtime's backends, one file each behind a small protocol: export metadata, input buffers, the model call.

``open_backend`` picks one from the model path: an ``*_openvino_model`` folder or its ``.xml`` runs on OpenVINO
(``backend_openvino``), a ``.onnx`` file on ONNX Runtime (``backend_onnx``). Neither imports torch or ultralytics.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Protocol

import numpy as np

from yolo_kd.errors import KDError


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


def open_backend(model: str | Path, device: str = "CPU", hint: str = "LATENCY", precision: str = "") -> Backend:
    """The backend for ``model``: OpenVINO for an IR folder or ``.xml``, ONNX Runtime for a ``.onnx`` file.

    Args:
        model (str | Path): ``*_openvino_model`` folder, its ``.xml``, or an ``.onnx`` file.
        device (str): OpenVINO device (CPU, GPU, NPU, AUTO) or ONNX Runtime execution provider (CPU, CUDA,
            TensorRT, ... or its full name such as ``CUDAExecutionProvider``; several comma-separated, in order).
        hint (str): OpenVINO PERFORMANCE_HINT (LATENCY or THROUGHPUT); ONNX Runtime has none.
        precision (str): OpenVINO INFERENCE_PRECISION_HINT (e.g. ``f32``); ONNX Runtime runs the file's precision.
    """
    p = Path(model)
    if p.suffix.lower() == ".onnx":
        if not p.is_file():
            raise KDError(f"ONNX model '{p}' does not exist; export one with `yolo-kd export format=onnx`")
        if precision:
            raise KDError(f"precision={precision} is an OpenVINO setting; an ONNX file runs at its own precision")
        from yolo_kd.edge.backend_onnx import OnnxRuntimeBackend

        return OnnxRuntimeBackend(p, device)
    if p.is_dir() or p.suffix.lower() == ".xml":
        from yolo_kd.edge.backend_openvino import OpenVINOBackend

        return OpenVINOBackend(p, device, hint, precision)
    raise KDError(
        f"model '{p}' is neither an OpenVINO IR (*_openvino_model folder or .xml) nor an .onnx file; "
        "export one with `yolo-kd export format=openvino` or `format=onnx`"
    )
