"""Per-node time of an in-graph IR's own pre/post-processing nodes (OpenVINO's PERF_COUNT), from decoded frames.

``python benchmarks/in_graph_profile.py IR_FOLDER IMAGES [IMGSZ]``: the IR runs on the first 30 frames of ``IMAGES``
(letterboxed as the Detector does), 3 timed passes after one warm-up; prints the total per frame and every node that
is not part of the exported network (the network's nodes carry ``__module`` names), slowest first (docs 4f).
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

from yolo_kd.edge.graph import read_metadata
from yolo_kd.edge.ops import letterbox, to_input
from yolo_kd.edge.runtime import list_images, read_image


def main(folder: str, images: str, imgsz: int = 320) -> None:
    """Print the per-frame total and the added nodes' times (us per frame)."""
    import openvino as ov

    xml = next(Path(folder).glob("*.xml"))
    e2e = bool(read_metadata(folder).get("in_graph"))  # as the Detector decides
    compiled = ov.Core().compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": "YES"})
    req = compiled.create_infer_request()
    frames = [letterbox(read_image(f), (imgsz, imgsz))[0] for f in list_images(images)[:30]]
    us: dict[str, float] = collections.defaultdict(float)
    kind: dict[str, str] = {}
    n = 0
    for rep in range(4):
        for x in frames:
            req.infer(x[None] if e2e else to_input([x]))
            if rep:
                n += 1
                for p in req.profiling_info:
                    us[p.node_name] += p.real_time.total_seconds() * 1e6
                    kind[p.node_name] = f"{p.node_type} ({p.exec_type})"
    print(f"{Path(folder).name}: {sum(us.values()) / n:.0f} us per frame (sum of nodes, {n} frames)")
    for name, t in sorted(((k, v) for k, v in us.items() if "__module" not in k), key=lambda kv: -kv[1]):
        if t / n >= 1:
            print(f"  {t / n:7.1f} us  {kind[name]:<45} {name}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
