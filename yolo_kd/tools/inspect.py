"""``yolo-kd inspect``: what each distillation term does on a few real training batches, without training.

Per KD term: its value and the norm of its gradient on the student's shared parameters (backbone and neck, which
every term reaches) relative to the student's own loss's (the share a user tunes weights for); per level, where each
spatial weighting puts its mass (inside boxes, background, letterbox padding); the teacher's and the student's mAP
with a warning when the teacher is not stronger; warnings for inert (< 0.1x) and dominating (> 20x) terms; a PNG of
the maps over the images. Seg, pose and obb students get their task's trainer, as in ``yolo-kd train``: their own
loss includes masks, keypoints or angles, and the mAP is the task's (mask, pose) with the box mAP beside it.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from yolo_kd.losses.functional import cells_in_boxes, max_per_image

PAD = 114 / 255  # Ultralytics' letterbox / mosaic fill value (before HSV augmentation)
INERT, DOMINANT = 0.1, 20.0


def region_mass(m: Tensor, img: Tensor, boxes: Tensor, idx: Tensor, stride: float) -> dict[str, float]:
    """Fractions of a (B, H, W) weight's mass on cells overlapping boxes, on padding, and on the rest (background).

    A cell is padding when it is flat and grey (letterbox / mosaic fill: R = G = B and no texture; HSV augmentation
    changes its brightness, not its greyness); box cells take precedence over padding.
    """
    b, h, w = m.shape
    inside = cells_in_boxes(boxes / stride, h, w).to(m.dtype) if len(boxes) else m.new_zeros(0, h, w)
    inside = max_per_image(inside, idx, b) > 0
    img = img.float()
    grey = ((img.amax(1, keepdim=True) - img.amin(1, keepdim=True)) < 1.5 / 255).float()
    lum = img.mean(1, keepdim=True)
    var = F.adaptive_avg_pool2d(lum**2, (h, w)) - F.adaptive_avg_pool2d(lum, (h, w)) ** 2
    pad = (F.adaptive_avg_pool2d(grey, (h, w))[:, 0] > 0.9) & (var[:, 0] < (1.5 / 255) ** 2) & ~inside
    total = float(m.sum().clamp(min=1e-12))
    box_mass, pad_mass = float(m[inside].sum()) / total, float(m[pad].sum()) / total
    chance = float(inside.float().mean())
    return {"box": box_mass, "pad": pad_mass, "bg": max(1 - box_mass - pad_mass, 0.0), "chance": chance}  # no -0.00


def grad_shares(det: Tensor, terms: dict[str, Tensor], params: list[Tensor], bs: int) -> dict[str, float]:
    """Gradient norm of each KD term (as it enters the total loss, x batch size) / that of the detection loss."""
    from yolo_kd.balance import grad_norm

    ref = max(float(grad_norm(det.sum(), params)), 1e-12)
    return {k: float(grad_norm(v * bs, params)) / ref for k, v in terms.items()}


def plot_maps(maps: dict[str, list[Tensor]], img: Tensor, path: Path, n: int = 4) -> Path:
    """PNG: the first ``n`` images (rows) with each term's P3 weight over them (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(n, img.shape[0])
    fig, axes = plt.subplots(n, len(maps) + 1, figsize=(2.6 * (len(maps) + 1), 2.6 * n), squeeze=False)
    for r in range(n):
        im = img[r].permute(1, 2, 0).float().cpu().numpy()
        axes[r][0].imshow(im)
        axes[r][0].set_title("image" if r == 0 else "")
        for c, (name, levels) in enumerate(maps.items(), 1):
            m = F.interpolate(levels[0][r : r + 1, None].float(), size=img.shape[-2:], mode="nearest")[0, 0]
            axes[r][c].imshow(im)
            axes[r][c].imshow(m.cpu().numpy(), alpha=0.6, cmap="jet")
            axes[r][c].set_title(f"{name} P3" if r == 0 else "")
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def teacher_vs_student(teacher: str, student: str, data: str, imgsz: int) -> dict[str, float]:
    """Stock-Ultralytics mAP50-95 of the teacher and (when it is a checkpoint) the student on the val split.

    ``teacher`` / ``student``: the task's own metric (mask mAP for seg, pose mAP for pose, box mAP otherwise);
    ``*_box``: box mAP, also given for seg and pose models.
    """
    from ultralytics import YOLO

    from yolo_kd.tasks import BOX_METRIC, METRIC

    out = {}
    for name, w in (("teacher", teacher), ("student", student)):
        if str(w).endswith(".pt"):
            m = YOLO(str(w))
            r = m.val(data=data, imgsz=imgsz, batch=16, plots=False, verbose=False, workers=0)
            out[name] = float(getattr(r, METRIC.get(m.task, BOX_METRIC)[0]).map)
            out[f"{name}_box"] = float(r.box.map)
            out["metric"] = {"segment": "mask ", "pose": "pose "}.get(m.task, "")
    return out


def run_inspect(teacher: str, data: str, student: str = "yolov8n.yaml", method: str | None = None, batches: int = 8,
                imgsz: int | None = None, batch: int = 8, out: str = "", **kw: Any) -> dict[str, Any]:  # fmt: skip
    """Inspect ``method`` on ``batches`` training batches; print the report and return it (see module docstring).

    ``method`` left out inspects the one ``yolo-kd train`` picks for this student and teacher (``cfg.default_method``).
    ``imgsz`` defaults to the student checkpoint's training size, else the teacher's, else 640 (a 160-px pair
    inspected at 640 reports a weak teacher and misleading gradient shares).
    """
    from yolo_kd.cfg import whole
    from yolo_kd.checkpoint.safe_load import train_imgsz
    from yolo_kd.paths import resolve_weights
    from yolo_kd.tasks import trainer_for

    batches, batch = whole(batches, "batches", "inspect"), whole(batch, "batch", "inspect")
    imgsz = whole(imgsz, "imgsz", "inspect", low=32) if imgsz is not None else None
    teacher = resolve_weights(teacher, "teacher")  # a missing file: one line, before any network or folder
    imgsz = imgsz or train_imgsz(student) or train_imgsz(teacher) or 640

    with tempfile.TemporaryDirectory() as tmp:
        ov = {"teacher": teacher, "student": student, "data": data, "imgsz": imgsz, "batch": batch, "epochs": 1,
              "workers": 0, "project": tmp, "name": "inspect", "plots": False, "val": False, "verbose": False,
              **({"method": method} if method else {}), **kw}  # fmt: skip
        trainer = trainer_for(ov)  # the student's task picks the trainer (and, left out, the method) as `train` does
        shown = method or f"{trainer.args.method} (picked for this student: method= left out)"
        method = trainer.args.method
        trainer._setup_train()
        model = trainer.model
        params = model.shared_params()  # backbone + neck: every term reaches them (head-level ones via the head)
        shares: dict[str, list[float]] = {}
        values: dict[str, list[float]] = {}
        mass: dict[tuple[str, int], list[dict]] = {}
        first = None
        for i, b in enumerate(trainer.train_loader):
            if i >= batches:
                break
            b = trainer.preprocess_batch(b)
            det, _, terms, x = model.kd_terms(b)
            for k, v in grad_shares(det, terms, params, b["img"].shape[0]).items():
                shares.setdefault(k, []).append(v)
                values.setdefault(k, []).append(float(terms[k].detach()))
            with torch.no_grad():
                maps = model.kd_loss.spatial_weights(x)
            idx, _, boxes = x.gt
            for k, levels in maps.items():
                for lv, (m, stride) in enumerate(zip(levels, x.strides)):
                    mass.setdefault((k, lv), []).append(region_mass(m.float(), b["img"], boxes, idx, stride))
            first = first or (maps, b["img"])
        maps_png = None
        if first and first[0]:
            target = Path(out or ".") / f"inspect-{method.replace('+', '-')}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            maps_png = plot_maps(first[0], first[1], target)
    strength = teacher_vs_student(str(trainer.args.distill_model), student, str(trainer.args.data), imgsz)
    report = summarise(shown, values, shares, mass, strength)
    report["png"] = str(maps_png) if maps_png else None
    print(report["text"] + (f"\nMaps: {maps_png}" if maps_png else ""))
    return report


def summarise(method: str, values: dict, shares: dict, mass: dict, strength: dict) -> dict[str, Any]:
    """Means over batches and the printed report with its warnings."""
    mean = {k: statistics.fmean(v) for k, v in shares.items()}
    lines = [f"yolo-kd inspect: method={method}", "| term | value | grad share (x student loss) |", "|---|---|---|"]
    lines += [f"| {k} | {statistics.fmean(values[k]):.4g} | {mean[k]:.2f} |" for k in mean]
    if mass:
        lines += [
            "",
            "| weighting | level | in boxes | background | padding | box cells (chance) |",
            "|---|---|---|---|---|---|",
        ]
        for (k, lv), ms in sorted(mass.items()):
            avg = {r: statistics.fmean(m[r] for m in ms) for r in ("box", "bg", "pad", "chance")}
            lines.append(
                f"| {k} | P{lv + 3} | {avg['box']:.2f} | {avg['bg']:.2f} | {avg['pad']:.2f} | {avg['chance']:.2f} |"
            )
    warnings = [f"'{k}' is inert: its gradient is {v:.2f}x the student loss's (< {INERT}); raise its weight"
                for k, v in mean.items() if v < INERT]  # fmt: skip
    warnings += [f"'{k}' dominates: {v:.1f}x the student loss's gradient (> {DOMINANT:g}); lower its weight"
                 for k, v in mean.items() if v > DOMINANT]  # fmt: skip
    if "teacher" in strength:
        who = [w for w in ("teacher", "student") if w in strength]
        line = ", ".join(f"{w} {100 * strength[w]:.1f}" for w in who)
        if strength.get("metric"):  # a seg / pose pair: its boxes too
            line += " (box: " + ", ".join(f"{w} {100 * strength[w + '_box']:.1f}" for w in who) + ")"
        lines.append(f"\n{strength.get('metric', '')}mAP50-95: {line}")
        if strength.get("student", -1) >= strength["teacher"]:
            warnings.append("the teacher is not stronger than the student: distillation can only pull it down")
    lines += [f"WARNING: {w}" for w in warnings]
    return {"shares": mean, "values": {k: statistics.fmean(v) for k, v in values.items()}, "warnings": warnings,
            "mass": {f"{k}/P{lv + 3}": ms for (k, lv), ms in mass.items()}, "strength": strength,
            "text": "\n".join(lines)}  # fmt: skip
