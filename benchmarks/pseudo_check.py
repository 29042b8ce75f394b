"""How close a trained teacher's pseudo-labels come to the ground truth, per task (seg, pose, obb).

Labeled train images go through the student's pipeline without augmentation, the teacher labels them as it labels
unlabeled images (``PseudoLabeler``), and each ground-truth instance is matched to its best pseudo-box (IoU > 0.5;
rotated: probIoU). Printed: counts, mean matched box IoU, mask IoU (prototype pixels) and keypoint error (input pixels).

    python benchmarks/pseudo_check.py segment runs/bench/t3-seg [batches=4 imgsz=160 conf=0.5]
"""

from __future__ import annotations

import sys

import torch
from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset
from ultralytics.data.build import build_dataloader
from ultralytics.data.utils import check_det_dataset
from ultralytics.nn.tasks import load_checkpoint
from ultralytics.utils.metrics import batch_probiou, box_iou
from ultralytics.utils.ops import xywh2xyxy

from yolo_kd.pseudo import PseudoLabeler

SUB = {"segment": "segment", "pose": "pose", "obb": "obb"}


def mean(x: list[float]) -> float:
    """Mean of a list (0 when empty)."""
    return sum(x) / max(len(x), 1)


def check(task: str, folder: str, batches: int = 4, imgsz: int = 160, conf: float = 0.5) -> dict:
    """Pseudo-labels of the teacher in a T3 benchmark ``folder`` against that folder's train labels."""
    data = check_det_dataset(f"{folder}/data/{SUB[task]}/data.yaml")
    teacher = load_checkpoint(f"{folder}/runs/teacher/weights/best.pt")[0].float().eval()
    args = get_cfg(overrides={"imgsz": imgsz, "task": task})
    loader = build_dataloader(build_yolo_dataset(args, data["train"], 16, data, mode="val", stride=32), 16, 0, False)
    head = teacher.model[-1]
    kpt = tuple(head.kpt_shape) if task == "pose" else None
    lab = PseudoLabeler(conf=conf, task=task, nc_t=head.nc, kpt_shape=kpt)
    s = {"gt": 0, "pseudo": 0, "matched": 0, "box_iou": [], "mask_iou": [], "kpt_px": []}
    for bi, b in enumerate(loader):
        if bi == batches:
            break
        img = b["img"].float() / 255
        with torch.no_grad():
            pl = lab.label(teacher(img)[0], 0, tuple(img.shape[2:]), head.nc, None)
        h, w = img.shape[2:]
        scale = torch.tensor([w, h, w, h] + ([1.0] if task == "obb" else []))
        for i in range(img.shape[0]):
            g, p = b["batch_idx"] == i, pl["batch_idx"] == i
            s["gt"], s["pseudo"] = s["gt"] + int(g.sum()), s["pseudo"] + int(p.sum())
            if not g.any() or not p.any():
                continue
            gb, pb = b["bboxes"][g].float() * scale, pl["bboxes"][p] * scale
            iou = batch_probiou(gb, pb) if task == "obb" else box_iou(xywh2xyxy(gb), xywh2xyxy(pb))
            best, j = iou.max(1)
            for k in torch.nonzero(best > 0.5).view(-1).tolist():
                s["matched"] += 1
                s["box_iou"].append(float(best[k]))
                if task == "segment":  # index maps: instance n of the image is value n + 1
                    gm, pm = b["masks"][i] == k + 1, pl["masks"][i] == int(j[k]) + 1
                    s["mask_iou"].append(float((gm & pm).sum() / (gm | pm).sum().clamp(min=1)))
                if task == "pose":
                    gk, pk = b["keypoints"][g][k].float(), pl["keypoints"][p][j[k]]
                    both = (gk[:, 2] > 0) & (pk[:, 2] > 0)
                    s["kpt_px"] += ((gk[:, :2] - pk[:, :2]) * torch.tensor([w, h])).norm(dim=-1)[both].tolist()
    return {k: round(mean(v), 3) if isinstance(v, list) else v for k, v in s.items()} | {
        "n_mask": len(s["mask_iou"]),
        "n_kpt": len(s["kpt_px"]),
    }


if __name__ == "__main__":
    kv = dict(a.split("=", 1) for a in sys.argv[3:])
    out = check(sys.argv[1], sys.argv[2], int(kv.get("batches", 4)), int(kv.get("imgsz", 160)),
                float(kv.get("conf", 0.5)))  # fmt: skip
    print(sys.argv[1], out)
