"""Median latency of OpenVINO IR folders on this machine: ``python benchmarks/ir_latency.py IR_DIR [IR_DIR ...]``.

Batch 1, random input of the IR's static shape, 5 warm-up then 30 timed synchronous calls, CPU plugin defaults.
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
    for ir in irs:
        xml = str(next(Path(ir).glob("*.xml")))
        compiled = core.compile_model(xml, "CPU")
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
        print(f"{ir}\t{shape[-1]}\t{np.median(times):.2f} ms\t{fq} FakeQuantize")


if __name__ == "__main__":
    main(sys.argv[1:])
