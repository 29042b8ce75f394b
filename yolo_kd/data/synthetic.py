"""Synthetic road scenes written in KITTI object format (image_2/ + label_2/), for the demo and the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

W, H = 384, 224  # image size (KITTI is 1242x375; a less extreme aspect keeps objects learnable at small imgsz)
HORIZON = 0.42  # horizon height as a fraction of H


def _box_overlap(a: tuple, b: tuple) -> float:
    """Fraction of box a covered by box b (xyxy)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = max((a[2] - a[0]) * (a[3] - a[1]), 1e-6)
    return iw * ih / area


def _draw_car(d: ImageDraw.ImageDraw, x: float, yb: float, s: float, rng: np.random.Generator) -> tuple:
    """Car seen from behind/side: body, windows, wheels. Returns the xyxy box."""
    w, h = 2.2 * s, 1.1 * s
    color = tuple(int(c) for c in rng.integers(30, 230, 3))
    x0, y0 = x - w / 2, yb - h
    d.rounded_rectangle([x0, y0 + 0.35 * h, x0 + w, yb - 0.12 * h], radius=max(1, s * 0.12), fill=color)
    d.rectangle([x0 + 0.18 * w, y0, x0 + 0.82 * w, y0 + 0.4 * h], fill=color)
    d.rectangle([x0 + 0.24 * w, y0 + 0.07 * h, x0 + 0.76 * w, y0 + 0.36 * h], fill=(40, 50, 70))
    r = 0.16 * h
    for cx in (x0 + 0.2 * w, x0 + 0.8 * w):
        d.ellipse([cx - r, yb - 2 * r, cx + r, yb], fill=(15, 15, 15))
    return (x0, y0, x0 + w, yb)


def _draw_person(d: ImageDraw.ImageDraw, x: float, yb: float, s: float, rng: np.random.Generator) -> tuple:
    """Pedestrian: head, torso, legs. Returns the xyxy box."""
    h = 1.9 * s
    w = 0.45 * s
    shirt = tuple(int(c) for c in rng.integers(40, 255, 3))
    skin = (int(rng.integers(120, 230)), int(rng.integers(90, 180)), int(rng.integers(60, 150)))
    hr = 0.11 * h
    d.ellipse([x - hr, yb - h, x + hr, yb - h + 2 * hr], fill=skin)
    d.rectangle([x - w / 2, yb - h + 2 * hr, x + w / 2, yb - 0.45 * h], fill=shirt)
    d.rectangle([x - w / 2, yb - 0.45 * h, x - w * 0.08, yb], fill=(30, 30, 60))
    d.rectangle([x + w * 0.08, yb - 0.45 * h, x + w / 2, yb], fill=(30, 30, 60))
    return (x - w / 2, yb - h, x + w / 2, yb)


def _draw_cyclist(d: ImageDraw.ImageDraw, x: float, yb: float, s: float, rng: np.random.Generator) -> tuple:
    """Cyclist: two wheels, frame, rider. Returns the xyxy box."""
    r = 0.42 * s
    w = 1.9 * s
    for cx in (x - w / 2 + r, x + w / 2 - r):
        d.ellipse([cx - r, yb - 2 * r, cx + r, yb], outline=(10, 10, 10), width=max(1, int(s * 0.1)))
    d.line(
        [x - w / 2 + r, yb - r, x, yb - 1.4 * r, x + w / 2 - r, yb - r], fill=(200, 30, 30), width=max(1, int(s * 0.1))
    )
    top = yb - 1.85 * s
    jacket = tuple(int(c) for c in rng.integers(40, 255, 3))
    d.rectangle([x - 0.22 * s, top + 0.35 * s, x + 0.22 * s, yb - 1.3 * r], fill=jacket)
    d.ellipse([x - 0.18 * s, top, x + 0.18 * s, top + 0.36 * s], fill=(180, 140, 110))
    return (x - w / 2, top, x + w / 2, yb)


DRAW = {"Car": _draw_car, "Pedestrian": _draw_person, "Cyclist": _draw_cyclist}
PROB = {"Car": 0.55, "Pedestrian": 0.28, "Cyclist": 0.17}


def road(rng: np.random.Generator) -> tuple[Image.Image, int, float]:
    """Sky gradient, verge and a road to its vanishing point: (image, horizon row, vanishing point's x)."""
    img = Image.new("RGB", (W, H))
    d = ImageDraw.Draw(img)
    hy = int(H * HORIZON)
    sky = rng.integers(120, 220, 3)
    for y in range(hy):  # sky gradient
        d.line([0, y, W, y], fill=tuple(int(c * (0.7 + 0.3 * y / hy)) for c in sky))
    d.rectangle([0, hy, W, H], fill=tuple(int(c) for c in rng.integers(40, 110, 3)))  # verge
    vx = W * rng.uniform(0.35, 0.65)
    d.polygon([(vx - 4, hy), (vx + 4, hy), (W * 1.1, H), (-W * 0.1, H)], fill=(85, 85, 90))  # road
    return img, hy, vx


def render_scene(rng: np.random.Generator) -> tuple[Image.Image, list[str]]:
    """Draw one road scene; return the image and its KITTI label lines (incl. a DontCare region sometimes)."""
    img, lines, _ = render_layers(rng)
    return img, lines


def render_layers(rng: np.random.Generator, masks: bool = False) -> tuple[Image.Image, list[str], list[tuple]]:
    """:func:`render_scene`, and with ``masks`` each labelled object's visible pixels: ``[(class, bool (H, W))]``.

    Each object is then drawn on its own layer and pasted, so the image and the rng stream are the same either way.
    """
    img, hy, vx = road(rng)
    d = ImageDraw.Draw(img)
    for k in range(6):  # lane dashes
        t0, t1 = k / 6, k / 6 + 0.07
        d.line([vx, hy + (H - hy) * t0, vx, hy + (H - hy) * t1], fill=(230, 230, 230), width=1 + k)
    objs = []
    for _ in range(int(rng.integers(1, 7))):
        cls = str(rng.choice(list(PROB), p=list(PROB.values())))
        yb = hy + (H - hy) * rng.uniform(0.08, 1.05)
        s = 4 + 30 * (yb - hy) / (H - hy)  # perspective: nearer (lower) is bigger
        objs.append((yb, cls, rng.uniform(-0.05, 1.05) * W, s))
    lines, drawn, layers, kept = [], [], [], []
    for yb, cls, x, s in sorted(objs):  # far to near, so near objects occlude far ones
        if masks:
            layer = Image.new("RGBA", (W, H))
            drawn.append((cls, DRAW[cls](ImageDraw.Draw(layer), x, yb, s, rng)))
            img.paste(layer, (0, 0), layer)
            layers.append(np.asarray(layer)[..., 3] > 0)
        else:
            drawn.append((cls, DRAW[cls](d, x, yb, s, rng)))
    for i, (cls, (x1, y1, x2, y2)) in enumerate(drawn):
        occ = max([_box_overlap((x1, y1, x2, y2), b) for _, b in drawn[i + 1 :]] or [0.0])
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, W - 1), min(y2, H - 1)
        if cx2 - cx1 < 2 or cy2 - cy1 < 2 or occ > 0.85:
            continue
        trunc = 1 - (cx2 - cx1) * (cy2 - cy1) / max((x2 - x1) * (y2 - y1), 1e-6)
        level = 0 if occ < 0.1 else 1 if occ < 0.5 else 2
        lines.append(
            f"{cls} {trunc:.2f} {level} 0.00 {cx1:.2f} {cy1:.2f} {cx2:.2f} {cy2:.2f} "
            "1.50 1.60 3.90 0.00 1.60 20.00 0.00"
        )
        if masks:  # what nearer objects leave visible
            kept.append((cls, layers[i] & ~np.any(layers[i + 1 :], axis=0) if i + 1 < len(layers) else layers[i]))
    if rng.random() < 0.3:
        x = rng.uniform(0, W - 40)
        lines.append(
            f"DontCare -1 -1 -10 {x:.2f} {hy - 5:.2f} {x + 30:.2f} {hy + 8:.2f} -1 -1 -1 -1000 -1000 -1000 -10"
        )
    arr = np.asarray(img, dtype=np.float32) * rng.uniform(0.6, 1.3)  # lighting
    arr += rng.normal(0, rng.uniform(2, 10), arr.shape)  # sensor noise
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8)), lines, kept


def make_synthetic_kitti(dst: str | Path, n: int = 300, seed: int = 0) -> Path:
    """Write ``n`` synthetic scenes as ``dst/image_2/NNNNNN.png`` and ``dst/label_2/NNNNNN.txt`` (KITTI layout).

    Args:
        dst (str | Path): Output root.
        n (int): Number of images.
        seed (int): Random seed (same seed, same dataset).

    Returns:
        (Path): The output root.
    """
    dst = Path(dst)
    (dst / "image_2").mkdir(parents=True, exist_ok=True)
    (dst / "label_2").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img, lines = render_scene(rng)
        img.save(dst / "image_2" / f"{i:06d}.png")
        (dst / "label_2" / f"{i:06d}.txt").write_text("".join(f"{x}\n" for x in lines))
    return dst
