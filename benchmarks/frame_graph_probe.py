"""Probe (issue 20): letterbox inside the OpenVINO graph for one fixed frame size, timed against the bare model call.

python benchmarks/frame_graph_probe.py IR_FOLDER IMAGES_DIR
The in-graph IR of ``yolo_kd.edge.graph`` gets, before its pre-processing, a resize (Interpolate, linear_onnx,
half-pixel, on uint8) and the letterbox padding for 640x480 frames, so the host only hands over the decoded frame.
Timed interleaved with the bare model on prepared inputs (30 frames of that size x 5 passes, first pass dropped).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def frame_model(xml: Path, imgsz: int, h0: int, w0: int):
    """The in-graph IR of ``xml`` taking (1, h0, w0, 3) uint8 BGR frames (letterboxed to ``imgsz`` in the graph)."""
    import openvino as ov
    from openvino import opset13 as op
    from openvino.preprocess import PrePostProcessor

    from yolo_kd.edge.graph import in_graph

    r = min(imgsz / h0, imgsz / w0)
    nw, nh = round(w0 * r), round(h0 * r)
    dw, dh = (imgsz - nw) / 2, (imgsz - nh) / 2
    top, bottom, left, right = round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)

    def letterbox(node):
        x = op.interpolate(
            node,
            op.constant(np.array([nh, nw], np.int64)),
            "linear_onnx",
            "sizes",
            axes=op.constant(np.array([1, 2], np.int64)),
            coordinate_transformation_mode="half_pixel",
        )
        begin, end = np.array([0, top, left, 0], np.int64), np.array([0, bottom, right, 0], np.int64)
        return op.pad(x, op.constant(begin), op.constant(end), "constant", op.constant(np.uint8(114))).output(0)

    ppp = PrePostProcessor(in_graph(ov.Core().read_model(xml)))
    ppp.input().tensor().set_shape([1, h0, w0, 3])
    ppp.input().preprocess().custom(letterbox)
    return ppp.build()


def main(ir: str, images: str) -> None:
    """Print the median bare and frame-graph latency and their ratio."""
    import openvino as ov

    from yolo_kd.edge import Detector
    from yolo_kd.edge.ops import to_input
    from yolo_kd.edge.runtime import list_images, read_image

    frames = [im for im in map(read_image, list_images(images)) if im.shape[:2] == (480, 640)][:30]
    det = Detector(ir)
    xml = next(Path(ir).glob("*.xml"))
    core, cfg = ov.Core(), {"PERFORMANCE_HINT": "LATENCY"}
    fused = core.compile_model(frame_model(xml, det.imgsz[0], 480, 640), "CPU", cfg)
    xs = [to_input([det.preprocess(f)[0]]) for f in frames]
    bare, graph = [], []
    for _ in range(5):
        for x, f in zip(xs, frames):
            t = time.perf_counter()
            det.backend.model(x)
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            fused(f[None])
            graph.append(time.perf_counter() - t)
    b, g = np.median(bare[len(xs) :]) * 1e3, np.median(graph[len(xs) :]) * 1e3
    print(f"{Path(ir).name}: bare {b:.2f} ms, frame in graph {g:.2f} ms, ratio {g / b:.3f} ({len(frames)} frames)")


if __name__ == "__main__":
    main(*sys.argv[1:])
