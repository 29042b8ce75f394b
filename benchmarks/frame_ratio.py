"""Image-to-boxes / bare-call ratio from decoded frames, for comparing two code trees process by process.

``python benchmarks/frame_ratio.py LABEL IR_ROOT NAMES IMAGES``: for each ``NAME`` (comma-separated) in ``IR_ROOT``,
the plain IR ``NAME_openvino_model`` (numpy path) and ``NAME_openvino_e2e_model`` (in-graph path) are timed
interleaved call by call with the bare compiled model (as ``yolo-kd benchmark edge``'s frame columns) on the first 30
images of ``IMAGES``; one line per IR, prefixed by ``LABEL``. Run it alternately under two ``PYTHONPATH`` trees.
"""

from __future__ import annotations

import sys
from pathlib import Path

from yolo_kd.bench.edge import interleaved_ms
from yolo_kd.edge import Detector
from yolo_kd.edge.runtime import list_images, read_image


def main(label: str, root: str, names: str, images: str) -> None:
    """Print bare, numpy-path and in-graph medians and their ratios to the bare call."""
    frames = [read_image(f) for f in list_images(images)[:30]]
    for name in names.split(","):
        det = Detector(Path(root) / f"{name}_openvino_model")
        fused = Detector(Path(root) / f"{name}_openvino_e2e_model")
        x = det.to_input(det.preprocess(frames[0])[0])
        bare = det.infer if hasattr(det, "infer") else det.model  # trees before the shared-buffer call time model(x)
        r = interleaved_ms({"bare": lambda _, f=bare, v=x: f(v), "numpy": det, "graph": fused}, frames)
        print(
            f"{label} {name}: bare {r['bare']:.2f} numpy {r['numpy']:.2f} graph {r['graph']:.2f} "
            f"ratio {r['graph'] / r['bare']:.3f} numpy-ratio {r['numpy'] / r['bare']:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main(*sys.argv[1:5])
