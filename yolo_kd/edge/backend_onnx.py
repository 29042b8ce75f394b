"""ONNX Runtime backend: an Ultralytics ``.onnx`` export in an ``InferenceSession`` on the chosen providers.

``pip install "yolo-kd[edge-onnx]"`` installs what it needs (numpy, pyyaml, onnxruntime, Pillow): no OpenVINO, no torch.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from yolo_kd.edge.backend import typed_meta
from yolo_kd.errors import KDError

DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}


def providers(device: str, available: list[str]) -> list[str]:
    """Execution providers for ``device`` ("CPU", "cuda", "TensorRT,CUDA", "CUDAExecutionProvider", ...), in order.

    CPU is appended as the fallback ONNX Runtime itself uses for nodes another provider does not take.
    """
    by_short = {p.removesuffix("ExecutionProvider").lower(): p for p in available}
    out = []
    for d in (s.strip() for s in device.split(",") if s.strip()):
        full = d if d in available else by_short.get(d.lower().removesuffix("executionprovider"))
        if full is None:
            short = ", ".join(p.removesuffix("ExecutionProvider") for p in available)
            raise KDError(f"ONNX Runtime has no '{d}' provider here; use one of {short} (or install its onnxruntime)")
        out.append(full)
    return out + [p for p in ("CPUExecutionProvider",) if p not in out and p in available]


class OnnxRuntimeRequest:
    """One inference at a time on a shared session, with its own input array; ``start`` runs it on its own thread.

    Like an OpenVINO infer request, each request has one inference in flight at most, so it needs one worker thread:
    n requests in flight get n threads (made on first ``start``), never a fixed-size pool that would queue them.
    """

    def __init__(self, backend: OnnxRuntimeBackend):
        """A request of ``backend`` (its buffer has the model's fixed input shape and type, else None)."""
        self._b = backend
        shape, dtype = backend.input_shape, backend.input_dtype
        self.buffer = np.zeros(shape, dtype) if shape is not None else None
        self._future: Future | None = None
        self._worker: ThreadPoolExecutor | None = None

    def run(self, x: np.ndarray | None = None) -> list[np.ndarray]:
        """Synchronous inference on ``x`` (or on ``buffer``)."""
        return self._b(self.buffer if x is None else x)

    def start(self, x: np.ndarray | None = None) -> None:
        """Start inference on this request's thread (``InferenceSession.run`` is thread-safe)."""
        assert self._future is None, "start() while the previous inference was not waited for"
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yolo-kd-ort")
        self._future = self._worker.submit(self.run, x)

    def wait(self) -> list[np.ndarray]:
        """Wait for the started inference; its outputs."""
        assert self._future is not None, "wait() without start()"
        out, self._future = self._future.result(), None
        return out


class OnnxRuntimeBackend:
    """An Ultralytics ONNX export in an ONNX Runtime session.

    Args:
        model (Path): The ``.onnx`` file (Ultralytics writes names, imgsz and task into its metadata).
        device (str): Execution provider(s), see ``providers``; CPU by default.
    """

    name = "onnxruntime"

    def __init__(self, model: Path, device: str = "CPU"):
        """Open the session and read the metadata."""
        import onnxruntime as ort

        chosen = providers(device or "CPU", ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(model), providers=chosen)
        except Exception as e:  # onnxruntime raises its own pybind11 types (InvalidProtobuf, Fail, ...)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise KDError(f"ONNX Runtime cannot load '{model}' ({first[:200]}); export it again") from None
        self.meta = typed_meta(self.session.get_modelmeta().custom_metadata_map)
        if "names" not in self.meta:
            raise KDError(f"'{model}' carries no Ultralytics metadata (class names, imgsz); export it with yolo-kd")
        inp = self.session.get_inputs()[0]
        self._input = inp.name
        self.input_dtype = DTYPES.get(inp.type, np.float32)
        fixed = all(isinstance(d, int) for d in inp.shape)
        self.input_shape: tuple | None = tuple(inp.shape) if fixed else None

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """``InferenceSession.run`` on ``x`` (converted to the model's input type if needed)."""
        if x.dtype != self.input_dtype:
            x = x.astype(self.input_dtype)
        return self.session.run(None, {self._input: x})

    def request(self) -> OnnxRuntimeRequest:
        """A new request with its own input buffer."""
        return OnnxRuntimeRequest(self)

    def requests_wanted(self) -> int:
        """One: a session already spreads one inference over the CPU's cores (intra-op threads)."""
        return 1
