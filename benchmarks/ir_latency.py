"""Median latency of OpenVINO IR folders here: ``python benchmarks/ir_latency.py IR_DIR [...] [precision=f32]``.

Batch 1, random input of the IR's static shape, 5 warm-up then 30 timed synchronous calls, CPU plugin defaults
(``precision=f32`` sets INFERENCE_PRECISION_HINT: the float parts in f32 instead of the CPU's default, bf16 on AMX).
Prints one tab-separated row per IR: folder, input size, median ms, number of FakeQuantize (INT8) nodes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import openvino as ov


def main(irs: list[str]) -> None:
    """Time each IR folder and print a row."""
    core = ov.Core()
    given = [a.split("=", 1)[1] for a in irs if a.startswith("precision=")]
    hint = {"INFERENCE_PRECISION_HINT": given[-1]} if given else {}
    for ir in (a for a in irs if not a.startswith("precision=")):
        xml = str(next(Path(ir).glob("*.xml")))
        compiled = core.compile_model(xml, "CPU", hint)
        shape = [d.get_length() for d in compiled.inputs[0].get_partial_shape()]
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        req = compiled.create_infer_request()
        for _ in range(5):
            req.infer({0: x})
        times = []
        for _ in range(30):
            t = time.perf_counter()
            req.infer({0: x})
            times.append((time.perf_counter() - t) * 1000)
        fq = sum(op.get_type_name() == "FakeQuantize" for op in core.read_model(xml).get_ops())
        print(f"{ir}\t{shape[-1]}\t{np.median(times):.2f} ms\t{fq} FakeQuantize\t{hint or 'CPU default'}")


if __name__ == "__main__":
    main(sys.argv[1:])
