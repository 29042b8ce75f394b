"""In-graph path with and without the in-place input buffer, each path on a frame no other path read just before.

``python benchmarks/frame_fast_path.py IR_ROOT NAME IMAGES`` (docs/benchmarks.md 4g): the bare call of the plain IR
``NAME_openvino_model`` on a prepared input, the in-graph IR ``NAME_openvino_e2e_model`` through the allocating path
(a new canvas, the compiled model's call) and through ``Detector.__call__`` (letterbox into the infer request's own
input buffer), interleaved call by call over 3 passes of the first 30 images. Unlike ``frame_ratio.py`` (where the
in-graph path reads the frame the numpy path has just read), each path here reads a frame last touched 10 steps
before, so none finds it in cache.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from yolo_kd.edge import Detector
from yolo_kd.edge.runtime import list_images, read_image


def main(root: str, name: str, images: str) -> None:
    """Print the three medians and both ratios to the bare call."""
    frames = [read_image(f) for f in list_images(images)[:30]]
    det = Detector(Path(root) / f"{name}_openvino_e2e_model")
    bare = Detector(Path(root) / f"{name}_openvino_model")
    x = bare.to_input(bare.preprocess(frames[0])[0])

    def allocating(img):
        y, rp = det.preprocess(img)
        return det.postprocess(det.first(det.infer(det.to_input(y))), rp, img.shape[:2])

    fns = {"bare": lambda _: bare.infer(x), "allocating": allocating, "in-place": det}
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(3):
        for i in range(len(frames)):
            for j, (k, fn) in enumerate(fns.items()):
                f = frames[(i + 10 * j) % len(frames)]
                t = time.perf_counter()
                fn(f)
                ts[k].append(time.perf_counter() - t)
    m = {k: statistics.median(v) * 1e3 for k, v in ts.items()}
    print(
        f"{name}: " + " ".join(f"{k} {v:.3f}" for k, v in m.items()),
        f"allocating/bare {m['allocating'] / m['bare']:.3f} in-place/bare {m['in-place'] / m['bare']:.3f}",
        flush=True,
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
