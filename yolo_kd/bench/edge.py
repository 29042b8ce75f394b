"""``yolo-kd benchmark edge``: latency, throughput, size and mAP of a student per runtime and precision.

For each input size: PyTorch FP32, ONNX Runtime FP32, OpenVINO FP32 / FP16 / INT8 (NNCF PTQ) / INT8 with NNCF's
accuracy control (``openvino-int8ac``, within ``max_drop`` mAP50-95 points of FP32; not in the default list), all
exported by ``yolo_kd.tools.export`` from the same .pt and validated by stock Ultralytics on the same val set. Latency
is the median of model calls at batch 1 on one letterboxed image (inference only); throughput uses OpenVINO's async
infer requests (THROUGHPUT hint) and, for PyTorch / ONNX Runtime, 1 / latency. End to end (image file -> boxes) compares
the torch-free runtime with Ultralytics' ``YOLO(ir).predict`` on the same IR; "first result" is a fresh process
importing ``yolo_kd.edge``, compiling the IR and detecting on one image.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = ("pytorch", "onnx", "openvino-fp32", "openvino-fp16", "openvino-int8", "openvino-int8ac")


def median_ms(fn, runs: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in ms."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def size_mb(path: Path) -> float:
    """Size of a model file, or of the .xml + .bin of an IR folder."""
    files = [path] if path.is_file() else [*path.glob("*.xml"), *path.glob("*.bin")]
    return sum(f.stat().st_size for f in files) / 2**20


def latency(fmt: str, path: Path, x: np.ndarray, runs: int, warmup: int) -> tuple[float, float]:
    """(median latency ms, throughput images/s) of one exported model on input ``x`` (1, 3, H, W)."""
    if fmt == "pytorch":
        import torch
        from ultralytics.nn.tasks import load_checkpoint

        m = load_checkpoint(str(path))[0].float().fuse().eval()
        t = torch.from_numpy(x)
        with torch.no_grad():
            ms = median_ms(lambda: m(t), runs, warmup)
        return ms, 1e3 / ms
    if fmt == "onnx":
        import onnxruntime as ort

        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = s.get_inputs()[0].name
        ms = median_ms(lambda: s.run(None, {name: x}), runs, warmup)
        return ms, 1e3 / ms
    import openvino as ov

    xml = next(path.glob("*.xml"))
    core = ov.Core()
    ms = median_ms(core.compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "LATENCY"}), runs, warmup)
    queue = ov.AsyncInferQueue(core.compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"}))
    n = max(runs * 2, 4 * len(queue))
    for _ in range(len(queue)):
        queue.start_async(x)
    queue.wait_all()
    t = time.perf_counter()
    for _ in range(n):
        queue.start_async(x)
    queue.wait_all()
    return ms, n / (time.perf_counter() - t)


def first_result_s(ir: Path, image: Path) -> float:
    """Seconds from a fresh process's ``import yolo_kd.edge`` to its first detections on ``image``."""
    code = (
        "import time; t = time.perf_counter(); from yolo_kd.edge import Detector; "
        f"Detector({str(ir)!r})({str(image)!r}); print(time.perf_counter() - t)"
    )
    return float(subprocess.check_output([sys.executable, "-c", code], text=True).strip().splitlines()[-1])


def interleaved_ms(fns: dict[str, Any], xs: list, rounds: int = 3) -> dict[str, float]:
    """Median ms of each function over ``rounds`` passes of ``xs``, the functions alternating call by call.

    Alternating keeps slow drifts of a shared or throttling CPU out of the ratios between them.
    """
    for fn in fns.values():
        fn(xs[0])  # warm-up
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for x in xs:
            for k, fn in fns.items():
                t = time.perf_counter()
                fn(x)
                ts[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1000 for k, v in ts.items()}


def end_to_end(model: Path, images: list[Path], imgsz: int, task: str = "detect") -> dict[str, float]:
    """Median ms per image of the paths from the image file, and of the Detector paths from a decoded frame.

    From the file (decode included): the torch-free Detector with numpy pre/post-processing, on an IR also the same
    with pre-processing and NMS inside the graph (``*_openvino_e2e_model``), and Ultralytics' ``YOLO(model).predict``.
    From a decoded BGR frame, as a camera delivers it: the Detector paths interleaved call by call with the bare model
    call on a prepared input (``frame_bare``: the compiled IR, or ``InferenceSession.run`` for an .onnx), so their
    ratio to it is not skewed by CPU drift.
    """
    from ultralytics import YOLO

    from yolo_kd.edge import Detector
    from yolo_kd.edge.graph import write_in_graph
    from yolo_kd.edge.runtime import read_image

    det, ul = Detector(model), YOLO(str(model), task=task)
    fused = Detector(write_in_graph(model)) if det.backend.name == "openvino" and task == "detect" else None
    frames = [read_image(f) for f in images]
    x = det.to_input(det.preprocess(frames[0])[0])

    def med(fn, xs: list) -> float:
        return statistics.median(median_ms(lambda v=v: fn(v), 3, 1) for v in xs)

    out = {"e2e_ours": med(det, images)}
    out["e2e_ul"] = med(lambda f: ul.predict(str(f), imgsz=imgsz, verbose=False), images)
    fns = {"frame_bare": lambda _: det.infer(x), "frame_ours": det}
    if fused is not None:
        out["e2e_graph"], fns["frame_graph"] = med(fused, images), fused
    return out | interleaved_ms(fns, frames)


def run_edge_benchmark(
    model: str,
    data: str,
    imgsz: list[int] | int = (320, 640),
    formats: list[str] | str = FORMATS[:-1],
    runs: int = 30,
    warmup: int = 5,
    fraction: float = 1.0,
    max_drop: float = 0.5,
    e2e_images: int = 10,
    images: str = "",
    out: str = "",
) -> str:
    """Export, time and validate every format at every size; print and (``out=``) save a markdown table.

    The end-to-end columns time ``e2e_images`` of the val split's images, or of ``images`` (a folder or file: e.g.
    the camera's own frames, such as ../shared's 1242x375 KITTI raw drive) when given.
    """
    import os
    import shutil
    import tempfile

    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    from yolo_kd.bench.report import machine
    from yolo_kd.edge.ops import letterbox, to_input
    from yolo_kd.errors import KDError
    from yolo_kd.paths import resolve_data
    from yolo_kd.tasks import METRIC
    from yolo_kd.tools.export import export, student_checkpoint
    from yolo_kd.tools.parity import sample_images

    formats = formats.split(",") if isinstance(formats, str) else list(formats)
    if bad := [f for f in formats if f not in FORMATS]:
        raise KDError(f"unknown edge format(s) {bad}; use {', '.join(FORMATS)}")
    if isinstance(imgsz, str):
        imgsz = [int(v) for v in imgsz.strip("[]()").split(",")]
    sizes = [imgsz] if isinstance(imgsz, int) else list(imgsz)
    data = resolve_data(data)
    work = Path(tempfile.mkdtemp(prefix="yolo-kd-edge-"))
    pt = work / "student.pt"
    shutil.copy(student_checkpoint(model), pt)
    image = sample_images(data, 1)[0]
    task = YOLO(str(pt)).task  # seg / pose / obb students: their masks, keypoints or rotated boxes are timed too
    from ultralytics.data.utils import check_det_dataset

    val = Path(check_det_dataset(data)["val"])
    files = sorted(p for p in (val.rglob("*") if val.is_dir() else []) if p.suffix.lower() in {".jpg", ".png"})
    if images:
        from yolo_kd.edge.runtime import list_images

        files = list_images(images)  # checked before any export: one line when missing or empty
    rows = []
    for sz in sizes:
        x = to_input([letterbox(image, (sz, sz))[0]])
        for fmt in formats:
            if fmt == "pytorch":
                path = pt
            else:
                kind, _, prec = fmt.partition("-")
                kw = {"half": prec == "fp16", "int8": prec.startswith("int8"), "fraction": fraction}
                kw["max_drop"] = max_drop if prec == "int8ac" else None
                path = Path(export(str(pt), format=kind, imgsz=sz, data=data, val=False, e2e=False, **kw)["export"])
                # unique name per size/precision; Ultralytics recognises IR folders by their "_openvino_model" suffix
                path = path.rename(
                    work / (f"{fmt}-{sz}{path.suffix}" if path.is_file() else f"{fmt}-{sz}_openvino_model")
                )
            ms, ips = latency(fmt, path, x, runs, warmup)
            r = YOLO(str(path), task=task).val(data=data, imgsz=sz, batch=1, device="cpu", plots=False, verbose=False)
            row: dict[str, Any] = {"format": fmt, "imgsz": sz, "ms": ms, "ips": ips, "mb": size_mb(path),
                                   "map50": float(r.box.map50), "map": float(r.box.map)}  # fmt: skip
            if task in METRIC:
                row["task_map"] = float(getattr(r, METRIC[task][0]).map)
            if (fmt.startswith("openvino") or fmt == "onnx") and files:
                row |= end_to_end(path, files[:e2e_images], sz, task)
                row["first_s"] = first_result_s(path, files[0])
            rows.append(row)
    base = {r["imgsz"]: r for r in rows if r["format"] == "pytorch"}
    extra = f" {METRIC[task][0]} mAP50-95 |" if task in METRIC else ""
    lines = [
        f"Student {model} ({task}), data {data}; batch 1, median of {runs} runs after {warmup} warm-up; {machine()}",
        "",
        "| format | imgsz | latency (ms) | x PyTorch | throughput (img/s) | size (MB) | "
        f"{'box ' if extra else ''}mAP50 | {'box ' if extra else ''}mAP50-95 |{extra} "
        "end-to-end torch-free numpy / in-graph / Ultralytics (ms) | in-graph / latency | "
        "from a decoded frame numpy / in-graph / bare, interleaved (ms) | frame best / bare | first result (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if extra else ""),
    ]
    for r in rows:
        speed = f"{base[r['imgsz']]['ms'] / r['ms']:.2f}" if r["imgsz"] in base else ""
        graph, fgraph = (f"{r[k]:.1f}" if k in r else "-" for k in ("e2e_graph", "frame_graph"))
        e2e = f"{r['e2e_ours']:.1f} / {graph} / {r['e2e_ul']:.1f}" if "e2e_ours" in r else ""
        ratio = f"{r['e2e_graph'] / r['ms']:.2f}" if "e2e_graph" in r else ""
        frame = f"{r['frame_ours']:.1f} / {fgraph} / {r['frame_bare']:.1f}" if "frame_ours" in r else ""
        fbest = r.get("frame_graph", r.get("frame_ours"))  # the in-graph IR where there is one, else the numpy path
        fratio = f"{fbest / r['frame_bare']:.2f}" if "frame_bare" in r else ""
        first = f"{r['first_s']:.2f}" if "first_s" in r else ""
        tm = f" {r['task_map']:.3f} |" if extra else ""
        lines.append(
            f"| {r['format']} | {r['imgsz']} | {r['ms']:.1f} | {speed} | {r['ips']:.1f} | {r['mb']:.1f} | "
            f"{r['map50']:.3f} | {r['map']:.3f} |{tm} {e2e} | {ratio} | {frame} | {fratio} | {first} |"
        )
    table = "\n".join(lines)
    print(table)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(table + "\n")
    return table
