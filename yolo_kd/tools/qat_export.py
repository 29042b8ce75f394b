"""OpenVINO INT8 IR of a quantization-aware-trained (QAT) student, from its Q/DQ ONNX graph.

Ultralytics exports a QAT checkpoint (``quantize=8`` training, ModelOpt fake-quantization) only to ONNX and TensorRT,
because only those read the learned ranges as QuantizeLinear/DequantizeLinear pairs. OpenVINO reads the same Q/DQ
ONNX graph and runs it in INT8, so the IR is converted from that ONNX file (no NNCF, no calibration: the ranges are
the ones trained with the teacher), with Ultralytics' ``metadata.yaml`` next to it so ``YOLO(ir)`` and
``yolo_kd.edge`` read names, size and stride as for any other IR.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any


def qat_openvino(pt: str | Path, imgsz: int, **kw: Any) -> Path:
    """Export ``pt`` to Q/DQ ONNX with Ultralytics, then to an INT8 OpenVINO IR folder; returns the folder."""
    import onnx
    import openvino as ov
    import yaml
    from ultralytics import YOLO

    f = Path(YOLO(str(pt)).export(format="onnx", imgsz=imgsz, simplify=True, device="cpu", **kw))
    meta = {p.key: p.value for p in onnx.load(str(f), load_external_data=False).metadata_props}
    for k, v in meta.items():  # ONNX stores every value as a string: names, imgsz, stride, end2end, ...
        try:
            meta[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            pass
    out = f.parent / f"{f.stem}_int8_qat_openvino_model"
    out.mkdir(exist_ok=True)
    ov.save_model(ov.convert_model(str(f)), str(out / f"{f.stem}.xml"), compress_to_fp16=False)
    (out / "metadata.yaml").write_text(yaml.safe_dump({**meta, "int8": True, "qat": True}, sort_keys=False))
    return out
