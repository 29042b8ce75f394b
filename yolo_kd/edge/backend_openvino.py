"""OpenVINO backend: an IR folder's ``.xml`` compiled on a device, its infer requests and ``metadata.yaml``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from yolo_kd.edge.backend import typed_meta
from yolo_kd.edge.graph import read_metadata
from yolo_kd.errors import KDError


class OpenVINORequest:
    """An OpenVINO infer request; ``buffer`` is its own input tensor's memory (None for a dynamic input)."""

    def __init__(self, request, n_out: int, fixed: bool):
        """Wrap ``request`` (n_out outputs)."""
        self._r, self._n = request, n_out
        self.buffer = request.get_input_tensor().data if fixed else None

    def _outputs(self) -> list[np.ndarray]:
        return [self._r.get_output_tensor(i).data for i in range(self._n)]

    def run(self, x: np.ndarray | None = None) -> list[np.ndarray]:
        """Synchronous inference (on ``buffer`` when ``x`` is None); OpenVINO's own output buffers."""
        if x is None:
            self._r.infer()
        else:
            self._r.infer(x)
        return self._outputs()

    def start(self, x: np.ndarray | None = None) -> None:
        """Start inference asynchronously."""
        if x is None:
            self._r.start_async()
        else:
            self._r.start_async(x)

    def wait(self) -> list[np.ndarray]:
        """Wait for the started inference; its outputs."""
        self._r.wait()
        return self._outputs()


class OpenVINOBackend:
    """An Ultralytics OpenVINO export compiled on ``device``.

    Args:
        model (Path): The ``*_openvino_model`` folder (with ``metadata.yaml``) or its ``.xml`` file.
        device (str): OpenVINO device: CPU, GPU, NPU or AUTO.
        hint (str): PERFORMANCE_HINT: LATENCY (one image at a time) or THROUGHPUT (many requests in flight).
        precision (str): INFERENCE_PRECISION_HINT, e.g. ``f32``; empty keeps the device default (bf16 on CPUs that
            have it, which moves raw outputs by up to a few pixels; use ``f32`` for bit-close parity).
    """

    name = "openvino"

    def __init__(self, model: Path, device: str = "CPU", hint: str = "LATENCY", precision: str = ""):
        """Read the metadata and compile the model."""
        import openvino as ov

        folder = model.parent if model.suffix == ".xml" else model
        xml = model if model.suffix == ".xml" else next(iter(sorted(folder.glob("*.xml"))), None)
        if xml is None or not xml.exists():
            raise KDError(f"no OpenVINO .xml model in '{folder}'; export one with `yolo-kd export format=openvino`")
        meta_file = folder / "metadata.yaml"
        if not meta_file.exists():
            raise KDError(f"'{folder}' has no metadata.yaml (class names, imgsz); export it with Ultralytics/yolo-kd")
        self.meta = typed_meta(read_metadata(folder))
        config = {"PERFORMANCE_HINT": hint} | ({"INFERENCE_PRECISION_HINT": precision} if precision else {})
        self.model = ov.Core().compile_model(str(xml), device, config)
        self._n_out = len(self.model.outputs)
        self._fixed = not self.model.input(0).get_partial_shape().is_dynamic

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """The compiled model's own call on ``x``, without copies (``x`` read in place; outputs OpenVINO's)."""
        r = self.model(x, share_inputs=True, share_outputs=True)
        return [r[i] for i in range(self._n_out)]

    def request(self) -> OpenVINORequest:
        """A new infer request."""
        return OpenVINORequest(self.model.create_infer_request(), self._n_out, self._fixed)

    def requests_wanted(self) -> int:
        """OPTIMAL_NUMBER_OF_INFER_REQUESTS of the compiled model."""
        return int(self.model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
