"""Synthetic scenes for segmentation, pose and oriented boxes, written as Ultralytics YOLO datasets (issue 35).

The detection footing's scenes cost nothing to make and let students train from scratch at CPU cost; these give each
task the same: ``segment`` is the road scenes of :mod:`yolo_kd.data.synthetic` (the same images) with each object's
visible pixels as its polygon; ``pose`` is articulated stick figures on those roads, 5 keypoints (head, left/right
hand, left/right foot; the figure's left is its left shoulder's side, so a horizontal flip swaps them: ``flip_idx``);
``obb`` is an aerial view of cars, trucks and planes at any angle, labelled by their rotated rectangles.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from yolo_kd.data.synthetic import H, W, render_layers, road

TASKS = ("segment", "pose", "obb")
SEG_NAMES = ["Car", "Pedestrian", "Cyclist"]
KPTS = ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
FLIP = [0, 2, 1, 4, 3]
OBB_NAMES = ["car", "truck", "plane"]
OBB_SIZE = 256


def polygon(mask: np.ndarray) -> list[float] | None:
    """The largest outer contour of a boolean mask as normalised x, y pairs (None below 3 points)."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea).reshape(-1, 2)
    if len(c) < 3:
        return None
    return [v for x, y in c for v in (x / mask.shape[1], y / mask.shape[0])]


def seg_scene(rng: np.random.Generator) -> tuple[Image.Image, list[str]]:
    """A road scene and one ``class x1 y1 x2 y2 ...`` line per visible object (its mask's outline)."""
    img, _, kept = render_layers(rng, masks=True)
    lines = []
    for cls, mask in kept:
        if mask.sum() >= 6 and (poly := polygon(mask)):
            lines.append(f"{SEG_NAMES.index(cls)} " + " ".join(f"{v:.5f}" for v in poly))
    return img, lines


def figure(d: ImageDraw.ImageDraw, x: float, yb: float, s: float, rng: np.random.Generator) -> list[tuple]:
    """Draw one stick figure standing at (x, yb), height ~2s; its 5 keypoints as (x, y)."""
    hip, neck = (x, yb - 0.95 * s), (x, yb - 1.6 * s)
    width, limb = max(1, int(0.14 * s)), 0.75 * s
    color = tuple(int(c) for c in rng.integers(40, 255, 3))
    head = (x + rng.uniform(-0.1, 0.1) * s, yb - 1.85 * s)
    pts = [head]
    for side, base, length, lo, hi in ((-1, neck, limb, 20, 160), (1, neck, limb, 20, 160)):
        a = math.radians(rng.uniform(lo, hi))  # an arm from the neck's side, downwards-outwards on average
        sx = base[0] + side * 0.22 * s
        pts.append((sx + side * length * math.sin(a), base[1] + length * math.cos(a) * 0.8))
        d.line([(sx, base[1]), pts[-1]], fill=color, width=width)
    for side in (-1, 1):
        a = math.radians(rng.uniform(5, 40))
        pts.append((hip[0] + side * 0.95 * s * math.sin(a), yb))
        d.line([hip, pts[-1]], fill=(30, 30, 60), width=width + 1)
    d.line([neck[0] - 0.22 * s, neck[1], neck[0] + 0.22 * s, neck[1]], fill=color, width=width)
    d.rectangle([x - 0.2 * s, neck[1], x + 0.2 * s, hip[1]], fill=color)
    r = 0.2 * s
    d.ellipse([head[0] - r, head[1] - r, head[0] + r, head[1] + r], fill=(200, 160, 120))
    return pts


def pose_scene(rng: np.random.Generator) -> tuple[Image.Image, list[str]]:
    """A road with 1-5 figures, far to near; one ``0 cx cy w h (x y v) x 5`` line per figure inside the image."""
    img, hy, _ = road(rng)  # the detection scenes' road, without lane dashes
    d = ImageDraw.Draw(img)
    lines = []
    for yb in sorted(hy + (H - hy) * rng.uniform(0.15, 1.0, int(rng.integers(1, 6)))):
        s = 5 + 28 * (yb - hy) / (H - hy)
        pts = figure(d, rng.uniform(0.05, 0.95) * W, yb, s, rng)
        xs, ys = [p[0] for p in pts], [p[1] - 0.2 * s * (i == 0) for i, p in enumerate(pts)]
        x1, y1, x2, y2 = max(min(xs) - 2, 0), max(min(ys) - 2, 0), min(max(xs) + 2, W - 1), min(max(ys) + 2, H - 1)
        if x2 - x1 < 3 or y2 - y1 < 3:
            continue
        kp = []
        for px, py in pts:
            inside = 0 <= px < W and 0 <= py < H
            kp += [px / W, py / H, 2] if inside else [0, 0, 0]
        box = [(x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H]
        lines.append("0 " + " ".join(f"{v:.5f}" if isinstance(v, float) else str(v) for v in box + kp))
    return img, lines


def rotated(cx: float, cy: float, w: float, h: float, a: float) -> list[tuple[float, float]]:
    """Corners of a w x h rectangle centred at (cx, cy), turned by a radians."""
    c, s = math.cos(a), math.sin(a)
    return [(cx + dx * c - dy * s, cy + dx * s + dy * c) for dx, dy in
            ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))]  # fmt: skip


def obb_scene(rng: np.random.Generator) -> tuple[Image.Image, list[str]]:
    """An aerial tile with 2-7 objects at random angles; one ``class x1 y1 ... x4 y4`` line each (rotated box)."""
    n = OBB_SIZE
    base = rng.integers(60, 140, 3)
    arr = np.clip(base + rng.normal(0, 12, (n, n, 3)), 0, 255).astype(np.uint8)  # ground texture
    img = Image.fromarray(arr)
    d = ImageDraw.Draw(img)
    lines = []
    for _ in range(int(rng.integers(2, 8))):
        k = int(rng.choice(3, p=[0.5, 0.3, 0.2]))
        cx, cy, a = rng.uniform(0.08, 0.92) * n, rng.uniform(0.08, 0.92) * n, rng.uniform(0, math.pi)
        color = tuple(int(c) for c in rng.integers(20, 255, 3))
        if k == 0:  # car: body and a dark windscreen band
            w = rng.uniform(20, 34)
            h = w * 0.48
            d.polygon(rotated(cx, cy, w, h, a), fill=color)
            off = 0.18 * w
            d.polygon(rotated(cx + off * math.cos(a), cy + off * math.sin(a), 0.18 * w, 0.8 * h, a), fill=(30, 35, 50))
        elif k == 1:  # truck: a long trailer and a cab of another colour
            w = rng.uniform(40, 64)
            h = w * 0.3
            d.polygon(rotated(cx - 0.1 * w * math.cos(a), cy - 0.1 * w * math.sin(a), 0.8 * w, h, a), fill=color)
            off = 0.4 * w
            cab = tuple(255 - c for c in color)
            d.polygon(rotated(cx + off * math.cos(a), cy + off * math.sin(a), 0.2 * w, 0.9 * h, a), fill=cab)
        else:  # plane: fuselage and a wing across it
            w = rng.uniform(40, 60)
            h = w * 0.9
            d.polygon(rotated(cx, cy, w, 0.16 * h, a), fill=(225, 225, 230))
            d.polygon(rotated(cx + 0.08 * w * math.cos(a), cy + 0.08 * w * math.sin(a), 0.22 * w, h, a), fill=color)
        corners = rotated(cx, cy, w, h, a)
        if all(0 <= x < n and 0 <= y < n for x, y in corners):  # whole objects only: a clipped box is another shape
            lines.append(f"{k} " + " ".join(f"{v / n:.5f}" for x, y in corners for v in (x, y)))
    return img, lines


SCENES = {"segment": seg_scene, "pose": pose_scene, "obb": obb_scene}
NAMES = {"segment": SEG_NAMES, "pose": ["person"], "obb": OBB_NAMES}


def make_synthetic_task(dst: str | Path, task: str, n: int = 540, val: int = 300, seed: int = 0) -> Path:
    """Write ``n`` scenes of ``task`` as a YOLO dataset (the last ``val`` as the val split); return its data.yaml."""
    import yaml

    if task not in SCENES:
        raise ValueError(f"task '{task}' has no synthetic scenes; use one of {', '.join(TASKS)}")
    dst = Path(dst)
    rng = np.random.default_rng(seed)
    for i in range(n):
        split = "val" if i >= n - val else "train"
        img, lines = SCENES[task](rng)
        for sub in ("images", "labels"):
            (dst / sub / split).mkdir(parents=True, exist_ok=True)
        img.save(dst / "images" / split / f"{i:06d}.png")
        (dst / "labels" / split / f"{i:06d}.txt").write_text("".join(f"{x}\n" for x in lines))
    d: dict[str, Any] = {"path": str(dst.resolve()), "train": "images/train", "val": "images/val"}
    d["names"] = dict(enumerate(NAMES[task]))
    if task == "pose":
        d.update(kpt_shape=[len(KPTS), 3], flip_idx=FLIP)
    (dst / "data.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    return dst / "data.yaml"
