"""Score checkpoints on a data yaml's train split (its `train:` used as `val:`): how well a teacher fits the images.

Usage: python benchmarks/train_split_score.py DATA.yaml IMGSZ WEIGHTS.pt [WEIGHTS.pt ...]
Stock Ultralytics val; prints mAP50-95 in points per checkpoint (R8, R10: teachers on the students' 400 images).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import yaml
from ultralytics import YOLO


def main() -> None:
    """Validate each checkpoint on the train split of the data yaml at the given size."""
    data, imgsz, weights = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    d = yaml.safe_load(data.read_text())
    d["path"] = str((data.parent / d.get("path", ".")).resolve())  # an absolute path: stays as it is
    d["val"] = d["train"]
    with tempfile.TemporaryDirectory() as tmp:
        y = Path(tmp) / "train-as-val.yaml"
        y.write_text(yaml.safe_dump(d))
        for w in weights:
            m = YOLO(w).val(data=str(y), imgsz=imgsz, batch=16, device="cpu", plots=False, verbose=False)
            print(f"{w}: mAP50-95 {m.box.map * 100:.2f} on the train split of {data}")


if __name__ == "__main__":
    main()
