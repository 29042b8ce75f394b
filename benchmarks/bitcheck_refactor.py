"""Behaviour check for engine refactors: the same two short KD runs on the old and on the new tree.

crosskd with ``unlabeled=`` (the kitti_raw_0005 frames) and gkd+bmfi, 1 epoch at 64 px on a quarter of COCO128
(``/tmp/c128``: a copy of ../shared/assets/datasets/coco128 with weights/yolov8n.pt beside data.yaml). Run
``PYTHONPATH=<old tree> python benchmarks/bitcheck_refactor.py OUT_OLD`` and the same with the new tree, then diff
the results.csv files (the time column aside) and the last.pt state dicts.
"""

import sys

from yolo_kd import KDTrainer

FRAMES = "../shared/assets/datasets/kitti_raw_0005/image_02"


def main(out: str) -> None:
    """Train both runs into ``out``."""
    for m, extra in (("crosskd", {"unlabeled": FRAMES}), ("gkd+bmfi", {})):
        args = dict(teacher="/tmp/c128/yolov8n.pt", student="yolov8n.yaml", data="/tmp/c128/data.yaml", method=m,
                    epochs=1, imgsz=64, batch=8, workers=0, device="cpu", seed=0, deterministic=True, plots=False,
                    val=False, fraction=0.25, project=out, name=m.replace("+", "-"), exist_ok=True)  # fmt: skip
        KDTrainer(overrides={**args, **extra}).train()


if __name__ == "__main__":
    main(sys.argv[1])
