"""``yolo-kd export``: Ultralytics' exporter plus what it lacks - KD checkpoints, and a parity report every time.

The export itself is Ultralytics' (ONNX slimmed by onnxslim, OpenVINO IR FP32/FP16, INT8 by NNCF post-training
quantization calibrated on ``data``'s images). Afterwards the exported model and the PyTorch student run on the same
letterboxed images: max / mean absolute difference of the raw outputs, and - with ``data`` - mAP50 / mAP50-95 of both
on the val split, stored in ``parity.json`` next to the export and printed; a large drop is flagged loudly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from yolo_kd.errors import KDError
from yolo_kd.tools.parity import compare, print_report, raw_outputs, sample_images


class Student(NamedTuple):
    """A plain student checkpoint and what export needs from it, read in one load."""

    path: Path
    task: str
    imgsz: int | None  # its training size (what ``yolo export`` uses when none is given)
    qat: bool  # carries ModelOpt quantization state (a ``quantize=8`` training)


def read_student(path: str | Path) -> Student:
    """Load a checkpoint once: the plain student, its task, training size and QAT state.

    The student is ``path`` itself, or ``<stem>-student.pt`` extracted from a mid-training KD checkpoint (whose
    model/EMA is a KDModel holding the student).
    """
    import torch

    p = Path(path)
    if not p.exists():
        raise KDError(f"model '{p}' not found; pass a .pt checkpoint (e.g. runs/detect/train/weights/best.pt)")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as e:
        raise KDError(f"'{p}' is not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from e
    from ultralytics.nn.tasks import DetectionModel, guess_model_task

    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    student = getattr(model, "student_model", model)
    if not isinstance(student, DetectionModel):  # detect, segment, pose and obb models (their subclasses)
        raise KDError(
            f"'{p}' holds no YOLO detect/segment/pose/obb model ({type(model).__name__}); export needs such a .pt"
        )
    from yolo_kd.checkpoint.safe_load import args_imgsz

    imgsz, task = args_imgsz(ckpt.get("train_args")), guess_model_task(student)
    if student is model:
        return Student(p, task, imgsz, bool(ckpt.get("modelopt")))
    out = p.with_name(f"{p.stem}-student.pt")
    torch.save({"model": student.half(), "train_args": ckpt.get("train_args", {}), "version": ckpt.get("version")}, out)
    print(f"export: '{p}' is a KD training checkpoint; its student (EMA) was saved as {out}")
    return Student(out, task, imgsz, False)  # the extracted file carries no ModelOpt state


def student_checkpoint(path: str | Path) -> Path:
    """Return a plain Ultralytics checkpoint of the student (see :func:`read_student`)."""
    return read_student(path).path


def export_metadata(path: str | Path) -> dict:
    """Ultralytics' metadata of an export, typed: an .onnx file's own, else the ``metadata.yaml`` beside it."""
    from yolo_kd.edge.backend import typed_meta
    from yolo_kd.edge.graph import read_metadata

    if str(path).endswith(".onnx"):
        import onnx

        return typed_meta({p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props})
    return typed_meta(read_metadata(path))


def onnxsim_module():
    """The optional onnxsim package, or one line saying how to get it."""
    try:
        import onnxsim
    except ImportError:
        raise KDError(
            "simplify=onnxsim needs onnxsim: pip install 'yolo-kd[onnxsim]' (or keep simplify=True: onnxslim)"
        ) from None
    return onnxsim


def onnx_nodes(path: str | Path, simplifier: str | None) -> dict[str, int]:
    """Graph node count of an exported ONNX file; with ``simplifier='onnxsim'`` simplify it in place first."""
    import onnx

    m = onnx.load(str(path))
    counts = {"exported": len(m.graph.node)}
    if simplifier == "onnxsim":
        simple, ok = onnxsim_module().simplify(m)
        if not ok:
            raise KDError("onnxsim could not check its simplified model; export with simplify=True (onnxslim)")
        onnx.save(simple, str(path))
        counts["simplified"] = len(simple.graph.node)
    return counts


def check_in_graph(folder: str | Path, images: list[np.ndarray], nms_args: dict[str, Any]) -> dict[str, Any]:
    """Write the in-graph IR beside ``folder`` and compare its detections with the numpy path's (both at f32)."""
    from yolo_kd.edge import Detector
    from yolo_kd.edge.graph import write_in_graph
    from yolo_kd.tools.parity import agreement

    args = {"conf": 0.25, "iou": 0.7, "max_det": 300, **nms_args}
    dst = write_in_graph(folder, **args)
    plain, fused = (Detector(f, precision="f32", **args) for f in (folder, dst))
    return {"export": str(dst), **agreement([plain(im) for im in images], [fused(im) for im in images])}


def export(
    model: str,
    format: str = "openvino",  # noqa: A002
    imgsz: int | None = None,
    half: bool = False,
    int8: bool = False,
    max_drop: float | None = None,
    data: str | None = None,
    fraction: float = 1.0,
    parity_images: int = 8,
    val: bool = True,
    e2e: bool | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Export a student and report parity with PyTorch; returns the report (also ``parity.json``).

    Args:
        model (str): Student .pt (best.pt, or last.pt of a KD run).
        format (str): ``onnx`` or ``openvino``.
        imgsz (int | None): Square input size; default: the checkpoint's training size, as ``yolo export``.
        half (bool): FP16 OpenVINO IR.
        int8 (bool): INT8 by NNCF post-training quantization (needs ``data``; calibrated on its train images).
        max_drop (float | None): With ``int8``: NNCF's accuracy control keeps the most sensitive layers in float
            until the IR's mAP50-95 on ``data``'s val split is within ``max_drop`` points of FP32 (detection).
        data (str | None): Dataset yaml: calibration images (``fraction`` of train) and the val set for mAP.
        fraction (float): Fraction of the training images used for INT8 calibration.
        parity_images (int): Images compared output by output.
        val (bool): Also compare mAP on ``data``'s val split.
        e2e (bool | None): Also write ``*_openvino_e2e_model``: pre-processing and NMS inside the graph (``conf``,
            ``iou``, ``max_det`` from kw, Ultralytics' predict defaults otherwise), checked against the numpy path.
            Default: on for ``format=openvino`` (faster from a frame, same boxes: docs/benchmarks.md 4d), off for
            NMS-free (end-to-end) heads, whose IR already returns final boxes.
        **kw: Other Ultralytics export arguments (e.g. ``batch``, ``opset``).
    """
    import os

    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    from yolo_kd.paths import resolve_data

    if format not in {"onnx", "openvino"}:
        raise KDError(f"format='{format}' is not supported here; use onnx or openvino (or Ultralytics' own export)")
    if int8 and format != "openvino":
        raise KDError("int8=True is supported for format=openvino (NNCF post-training quantization)")
    if e2e and format != "openvino":
        raise KDError("e2e=True builds pre/post-processing into an OpenVINO IR; use format=openvino")
    nms_args = {k: kw.pop(k) for k in ("conf", "iou", "max_det") if k in kw}
    if int8 and not data:
        raise KDError("int8=True needs data=D.yaml: NNCF calibrates on its training images")
    if max_drop is not None and (not int8 or float(max_drop) <= 0):
        raise KDError(f"max_drop={max_drop} needs int8=True and a positive drop in mAP50-95 points, e.g. max_drop=0.5")
    data = resolve_data(data)
    student = read_student(model)
    pt, imgsz = student.path, (student.imgsz or 640) if imgsz is None else imgsz  # as ``yolo export``
    if max_drop is not None and student.qat:
        raise KDError(
            f"'{model}' is a QAT checkpoint: its INT8 ranges were learned in training, so there is nothing for "
            "max_drop= to control; export it with int8=True alone, or pass max_drop= with a float checkpoint"
        )
    if max_drop is not None:
        from yolo_kd.tools.int8_control import check_task

        check_task(student.task)  # before the FP32 export, not after it
    quantize = 8 if int8 and max_drop is None else (16 if half and format == "openvino" else None)  # 8.4's int8/half
    args = {"format": format, "imgsz": imgsz, "quantize": quantize, "data": data, "fraction": fraction, **kw}
    if quantize == 8:
        args.setdefault("split", "train")  # Ultralytics calibrates on val by default: the val mAP below would leak
    simplifier = "onnxsim" if str(kw.get("simplify")).lower() == "onnxsim" else None
    if simplifier and format != "onnx":
        raise KDError("simplify=onnxsim applies to format=onnx (OpenVINO IRs are optimised by OpenVINO itself)")
    if simplifier:
        onnxsim_module()  # a missing extra stops here, before any export work
        args["simplify"] = False  # Ultralytics' onnxslim pass off; onnxsim runs on the plain export below
    elif format == "onnx":
        args.setdefault("simplify", True)  # FP32 ONNX slimmed by onnxslim; half ONNX export needs a GPU in Ultralytics
    from yolo_kd.tools.qat_export import qat_openvino

    qat = student.qat
    if qat and format == "openvino":  # INT8 from the ranges learned in training (quantize=8), not NNCF's PTQ
        out = qat_openvino(pt, imgsz, **kw)
    else:
        from contextlib import nullcontext

        from yolo_kd.tools.int8_control import quiet_nncf

        with quiet_nncf() if quantize == 8 else nullcontext():
            out = YOLO(str(pt)).export(**{k: v for k, v in args.items() if v is not None}, device="cpu")
    control = None
    if max_drop is not None:
        from yolo_kd.tools.int8_control import quantize_controlled

        control = quantize_controlled(out, data, imgsz, float(max_drop), fraction)
        out = control["export"]
    nodes = onnx_nodes(out, simplifier) if format == "onnx" else None
    precision = (
        "INT8-QAT" if qat else "INT8-AC" if control else "INT8" if int8 else "FP16" if half and format == "openvino"
        else "FP32"
    )  # fmt: skip
    images = sample_images(data, parity_images)
    meta = export_metadata(out)  # read once (an .onnx file is loaded whole for it)
    nms_free, task = bool(meta.get("end2end", False)), meta.get("task", "detect")
    ref = raw_outputs(str(pt), images, imgsz, "pt", end2end=nms_free)
    got = raw_outputs(str(out), images, imgsz, format, "f32" if precision == "FP32" and format == "openvino" else "")
    diff = np.abs(ref - got)
    report: dict[str, Any] = {
        "model": str(pt),
        "export": str(out),
        "format": format,
        "precision": precision,
        "imgsz": imgsz,
        "images": len(images),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        **compare(ref, got),
    }
    if control:
        report["int8_control"] = control
    if nodes:
        report["simplifier"], report["nodes"] = simplifier or ("onnxslim" if args.get("simplify") else "none"), nodes
    if format == "openvino" and precision == "FP32":  # what the device default (maybe bf16) does to the outputs
        dd = raw_outputs(str(out), images, imgsz, format)
        report["device_default"] = compare(ref, dd)
    if e2e and (nms_free or task != "detect"):
        why = "head is NMS-free (end-to-end); its IR already returns final boxes" if nms_free else f"task is {task}"
        print(f"e2e: this model's {why}; in-graph NMS is built for detection IRs only, none written")
    if (e2e if e2e is not None else format == "openvino") and not nms_free and task == "detect":
        report["in_graph"] = check_in_graph(out, images, nms_args)
    where = Path(out) if Path(out).is_dir() else Path(out).parent
    if val and data:
        for key, path in (("pytorch", str(pt)), ("exported", str(out))):
            r = YOLO(path, task=task).val(data=data, imgsz=imgsz, batch=1, device="cpu", plots=False, verbose=False,
                                          project=str(where), name=f"val-{key}", exist_ok=True)  # fmt: skip
            report[key] = {"mAP50": float(r.box.map50), "mAP50-95": float(r.box.map)}
        report["map50_95_drop"] = report["pytorch"]["mAP50-95"] - report["exported"]["mAP50-95"]
    (where / f"{Path(out).stem}-parity.json" if Path(out).is_file() else where / "parity.json").write_text(
        json.dumps(report, indent=2)
    )
    print_report(report)
    return report
