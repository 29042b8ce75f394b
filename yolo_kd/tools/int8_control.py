"""INT8 that keeps its accuracy: NNCF's accuracy-controlled post-training quantization of an OpenVINO detection IR.

``yolo-kd export ... int8=True max_drop=0.5`` exports the FP32 IR with Ultralytics, then
``nncf.quantize_with_accuracy_control`` quantizes it (calibration on the train split, as plain PTQ; the detection head
stays in float, as Ultralytics' own INT8 export keeps it) and, while the mAP50-95 on the val split is more than
``max_drop`` points below the FP32 IR's, returns the most sensitive layers to float, one group at a time. The mAP is
Ultralytics' own detection metric (its validator's pre/post-processing and matching) computed on the compiled IR,
so the numbers are those ``YOLO(ir).val()`` reports at the same square input size.

Reference: OpenVINO / NNCF "Quantizing with accuracy control" (``nncf.quantize_with_accuracy_control``).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from yolo_kd.errors import KDError

CALIBRATION_IMAGES = 300  # NNCF's default subset_size


def check_task(task: str) -> None:
    """Refuse a model whose task is not detection: the control measures detection mAP50-95."""
    if task != "detect":
        raise KDError(f"max_drop= controls detection mAP; this model's task is {task}: use int8=True only")


@contextmanager
def quiet_nncf() -> Iterator[None]:
    """NNCF's logger at WARNING for the block (its INFO lines, ~23 per PTQ, hidden; warnings still show).

    NNCF is imported first: importing it sets its logger to INFO, which would undo a level set before.
    """
    import nncf  # noqa: F401

    log = logging.getLogger("nncf")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


class QuietPlacement(logging.Filter):
    """Drops NNCF's one INFO line per float head op ("Not adding activation input quantizer for operation: ...")."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        return not str(record.msg).startswith("Not adding activation input quantizer")


def head_scope(model: Any) -> Any:
    """The ops Ultralytics' INT8 export keeps in float for a Detect head: every Sigmoid, the head's scope and its DFL.

    Args:
        model (openvino.Model): The FP32 IR.
    """
    import nncf

    ops = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        return None
    head = sigmoids[-1].split("/", 1)[0]
    names = [
        op.get_friendly_name()
        for op in ops
        if op.get_type_name() == "Sigmoid" or op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl"))
    ]
    return nncf.IgnoredScope(names=names)


def val_batches(data: str, imgsz: int, split: str, limit: int | None = None) -> tuple[Any, list[dict]]:
    """A detection validator for ``data`` and its ``split`` as letterboxed batches of one square image, read once.

    Args:
        data (str): Dataset yaml.
        imgsz (int): Square input size of the IR.
        split (str): ``train`` (calibration) or ``val`` (the metric).
        limit (int | None): At most this many images (evenly spaced over the split).
    """
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.data.utils import check_det_dataset
    from ultralytics.models.yolo.detect import DetectionValidator

    args = get_cfg(overrides={"data": data, "imgsz": imgsz, "batch": 1, "rect": False, "plots": False,
                              "verbose": False, "workers": 0, "mode": "val", "task": "detect"})  # fmt: skip
    v = DetectionValidator(args=args)
    v.data, v.stride, v.device = check_det_dataset(data), 32, torch.device("cpu")
    v.dataloader = v.get_dataloader(v.data[split], 1)
    n = len(v.dataloader.dataset)
    keep = set(range(n)) if not limit or limit >= n else {round(i * (n - 1) / max(limit - 1, 1)) for i in range(limit)}
    batches = [b for i, b in enumerate(v.dataloader) if i in keep]
    return v, batches


def ir_map(compiled: Any, batches: list[dict], validator: Any, names: dict[int, str]) -> float:
    """mAP50-95 (0-1) of a compiled detection IR on ``batches``, by Ultralytics' validator.

    Args:
        compiled (openvino.CompiledModel): The IR, compiled for the CPU.
        batches (list[dict]): Batches from :func:`val_batches`.
        validator (DetectionValidator): Their validator.
        names (dict[int, str]): Class names of the model.
    """
    import torch

    validator.init_metrics(SimpleNamespace(names=names, end2end=False))
    out = compiled.output(0)
    for batch in batches:
        b = validator.preprocess(dict(batch))
        preds = validator.postprocess(torch.from_numpy(compiled(b["img"].numpy())[out]))
        validator.update_metrics(preds, b)
    return float(validator.get_stats()["metrics/mAP50-95(B)"])


def fake_quantized_consumers(model: Any) -> set[str]:
    """Names of the ops fed by a FakeQuantize: the layers that run in INT8."""
    return {
        t.get_node().get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() == "FakeQuantize"
        for t in op.output(0).get_target_inputs()
    }


def quantize_controlled(ir_dir: str | Path, data: str, imgsz: int, max_drop: float, fraction: float = 1.0) -> dict:
    """Accuracy-controlled INT8 of an FP32 detection IR folder; writes ``*_int8ac_openvino_model`` beside it.

    Args:
        ir_dir (str | Path): The FP32 ``*_openvino_model`` folder (with Ultralytics' metadata.yaml).
        data (str): Dataset yaml: train images calibrate, the val split measures mAP50-95.
        imgsz (int): The IR's square input size.
        max_drop (float): Largest accepted mAP50-95 drop against the FP32 IR, in points (0-100 scale).
        fraction (float): Fraction of the calibration images used (at most 300).

    Returns:
        dict: ``export`` (the new folder), ``fp32`` / ``ptq`` / ``int8`` mAP50-95 (0-1) on the val split at f32
        inference precision (as NNCF's control compares them), ``fp32_device`` / ``int8_device`` at the CPU's default
        (bf16 where it has it, as ``YOLO(ir).val()``),
        ``kept_float`` (the layers the control returned to float), ``int8_layers`` and ``seconds``.
    """
    import nncf
    import openvino as ov

    from yolo_kd.edge.graph import read_metadata

    ir_dir = Path(ir_dir)
    meta = read_metadata(ir_dir)
    check_task(meta.get("task", "detect"))
    names = {int(k): v for k, v in meta["names"].items()}
    t0 = time.perf_counter()
    core, xml = ov.Core(), next(ir_dir.glob("*.xml"))
    model = core.read_model(xml)
    scope = head_scope(model)
    validator, val = val_batches(data, imgsz, "val")
    _, calib = val_batches(data, imgsz, "train", max(1, round(CALIBRATION_IMAGES * min(max(fraction, 0.0), 1.0))))
    calibration = nncf.Dataset(calib, lambda b: b["img"].numpy().astype("float32") / 255)
    validate = lambda compiled, items: ir_map(compiled, list(items), validator, names)  # noqa: E731
    kw = {"preset": nncf.QuantizationPreset.MIXED, "subset_size": len(calib), "ignored_scope": scope}
    with quiet_nncf():
        ptq = nncf.quantize(model, calibration, **kw)
    print(f"INT8 accuracy control: max_drop={max_drop} mAP50-95 points on {len(val)} val images (NNCF's log follows)")
    quiet = QuietPlacement()
    logging.getLogger("nncf").addFilter(quiet)
    try:
        controlled = nncf.quantize_with_accuracy_control(
            model, calibration, nncf.Dataset(val), validate, max_drop=max_drop / 100, **kw
        )
    finally:
        logging.getLogger("nncf").removeFilter(quiet)
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}  # NNCF's control compares at f32
    models = {"fp32": model, "ptq": ptq, "int8": controlled}
    maps = {k: ir_map(core.compile_model(m, "CPU", f32), val, validator, names) for k, m in models.items()}
    for k in ("fp32", "int8"):  # the CPU's default precision (bf16 where it has it), as YOLO(ir).val() runs
        maps[f"{k}_device"] = ir_map(core.compile_model(models[k], "CPU"), val, validator, names)
    in_ptq, in_ac = fake_quantized_consumers(ptq), fake_quantized_consumers(controlled)
    out = ir_dir.with_name(ir_dir.name.replace("_openvino_model", "_int8ac_openvino_model"))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    ov.save_model(controlled, out / xml.name, compress_to_fp16=False)
    shutil.copy(ir_dir / "metadata.yaml", out / "metadata.yaml")
    return {
        "export": str(out),
        "max_drop": max_drop,
        **maps,
        "kept_float": sorted(in_ptq - in_ac),
        "int8_layers": len(in_ac),
        "ptq_int8_layers": len(in_ptq),
        "seconds": time.perf_counter() - t0,
    }
