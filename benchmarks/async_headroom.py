"""Why async throughput cannot reach 1.5x the sync rate here (issue 20): cores kept busy per OpenVINO hint.

python benchmarks/async_headroom.py IR_FOLDER [IR_FOLDER ...]
For each IR: streams, threads and infer requests the CPU plugin picks for the LATENCY and THROUGHPUT hints, the rate
(150 requests after 10 warm-up, sync for LATENCY, an AsyncInferQueue for THROUGHPUT) and the process's CPU time
over wall time (busy cores). If one sync request already keeps every core busy, async can only add what better
per-core efficiency gives.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np


def cpu_seconds() -> float:
    """User + system CPU time of this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(*irs: str, n: int = 150) -> None:
    """Print one line per IR and hint."""
    import openvino as ov

    core = ov.Core()
    for ir in irs:
        model = core.read_model(next(Path(ir).glob("*.xml")))
        x = np.random.default_rng(0).random([d.get_length() for d in model.input(0).get_partial_shape()], np.float32)
        for hint in ("LATENCY", "THROUGHPUT"):
            c = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": hint})
            keys = ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "OPTIMAL_NUMBER_OF_INFER_REQUESTS")
            props = ", ".join(f"{k.lower()} {c.get_property(k)}" for k in keys)
            queue = ov.AsyncInferQueue(c, 0) if hint == "THROUGHPUT" else None
            for i in range(n + 10):
                if i == 10:
                    queue and queue.wait_all()
                    cpu0, t0 = cpu_seconds(), time.perf_counter()
                queue.start_async({0: x}) if queue else c(x)
            queue and queue.wait_all()
            wall = time.perf_counter() - t0
            print(
                f"{Path(ir).name} {hint}: {props}; {n / wall:.1f} img/s, busy cores {(cpu_seconds() - cpu0) / wall:.2f}"
            )


if __name__ == "__main__":
    main(*sys.argv[1:])
