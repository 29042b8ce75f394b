"""Time the two layout changes of docs/benchmarks.md D5 on this CPU, and check what they change in the numbers.

``python benchmarks/layout_probe.py``: (1) the frozen yolov8s teacher forward at 320, batch 8, NCHW against its backbone
and neck in channels-last (``yolo_kd.teacher_precision.channels_last``), in bf16 autocast and in FP32, with the largest
difference of its outputs; (2) forward + backward of a 1x1 adapter as ``nn.Conv2d`` against ``Conv1x1`` at the widths of
a yolov8n student / yolov8s teacher pair at 320, batch 8, each call on another of 16 inputs (out of cache, as in
training); (3) a yolov8n student's training step (forward, detection loss, backward) NCHW against channels-last, which
the trainer does not use (measured for a later round). Medians of 10 after 2 warm-up calls.
"""

from __future__ import annotations

import copy
from functools import partial

import torch
from torch import nn

from yolo_kd.bench.edge import median_ms
from yolo_kd.losses.layers import Conv1x1
from yolo_kd.teacher_precision import channels_last


def teacher_rows() -> None:
    """Teacher forward in both layouts and both precisions, and whether the outputs are identical."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    nchw = DetectionModel("yolov8s.yaml", nc=3, verbose=False).eval().requires_grad_(False)
    nhwc = copy.deepcopy(nchw)
    channels_last(nhwc)
    img = torch.rand(8, 3, 320, 320)

    def run(m: nn.Module, dtype: torch.dtype | None) -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            return m(img)[0]

    for name, dtype in (("bf16", torch.bfloat16), ("fp32", None)):
        a, b = (median_ms(lambda m=m, d=dtype: run(m, d), 10, 2) for m in (nchw, nhwc))
        diff = float((run(nchw, dtype).float() - run(nhwc, dtype).float()).abs().max())
        print(f"teacher forward {name}: NCHW {a:.0f} ms, channels-last {b:.0f} ms; max output difference {diff:.1e}")


def step(m: nn.Module, xs: list[torch.Tensor], g: torch.Tensor) -> None:
    """Forward + backward of ``m`` on the next of ``xs`` (out of cache, as in training), output gradient ``g``."""
    xs.append(x := xs.pop(0))
    x.grad = None
    m.zero_grad()
    m(x).backward(g)


def adapter_rows() -> None:
    """A 1x1 adapter's forward + backward as nn.Conv2d and as Conv1x1, and their largest output difference."""
    torch.manual_seed(0)
    for c1, c2, hw in (
        (64, 128, 40),
        (128, 128, 40),
        (128, 256, 20),
        (256, 256, 20),
        (256, 512, 10),
        (512, 512, 10),
        (128, 1, 40),
    ):
        xs = [torch.randn(8, c1, hw, hw, requires_grad=True) for _ in range(16)]
        ref = nn.Conv2d(c1, c2, 1)
        new = Conv1x1(c1, c2)
        new.load_state_dict(ref.state_dict())
        g = torch.randn(8, c2, hw, hw)
        a, b = (median_ms(partial(step, m, xs, g), 10, 2) for m in (ref, new))
        with torch.no_grad():
            diff = float((ref(xs[0]) - new(xs[0])).abs().max())
        print(f"adapter {c1}->{c2} at {hw}x{hw}: Conv2d {a:.2f} ms, Conv1x1 {b:.2f} ms; max difference {diff:.1e}")


def student_rows() -> None:
    """A student's FP32 training step in both layouts (not used by the trainer; D5 'seen')."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.bench.cost import batch_of

    torch.manual_seed(0)
    nchw = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    nchw.args = get_cfg(overrides={"imgsz": 320})
    nhwc = copy.deepcopy(nchw.train()).to(memory_format=torch.channels_last)
    batch = batch_of(8, 320, 3, "cpu")
    cl = {**batch, "img": batch["img"].contiguous(memory_format=torch.channels_last)}

    def train_step(m: nn.Module, b: dict) -> None:
        m.zero_grad(set_to_none=True)
        m.loss(b)[0].sum().backward()

    a, b = median_ms(partial(train_step, nchw, batch), 10, 2), median_ms(partial(train_step, nhwc, cl), 10, 2)
    print(f"student training step fp32: NCHW {a:.0f} ms, channels-last {b:.0f} ms")


if __name__ == "__main__":
    teacher_rows()
    adapter_rows()
    student_rows()
