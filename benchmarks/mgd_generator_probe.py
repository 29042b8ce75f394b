"""Time MGD's generators forward + backward: FP32, FP32 channels-last, bf16 autocast (docs/benchmarks.md D4 cost).

``python benchmarks/mgd_generator_probe.py``: the generators MGD builds for a yolov8s teacher (128, 256, 512 channels)
on the maps of a 320 px batch of 8 (40, 20, 10 cells); medians of 8 after 2 warm-up calls.
"""

from __future__ import annotations

import torch

from yolo_kd.bench.edge import median_ms
from yolo_kd.losses.mgd import MGD


def main() -> None:
    """Print the three medians."""
    torch.manual_seed(0)
    chans, sizes = [128, 256, 512], [40, 20, 10]
    gens = MGD(chans, chans).generator
    maps = [torch.randn(8, c, s, s) for c, s in zip(chans, sizes)]

    def step(channels_last: bool, dtype: torch.dtype | None) -> None:
        total = torch.zeros(())
        for g, x in zip(gens, maps):
            x = x.clone().requires_grad_(True)
            x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                y = g(x)
            total = total + (y.float() ** 2).sum()
        total.backward()

    def ms(channels_last: bool, dtype: torch.dtype | None) -> float:  # median of 8 after 2 warm-up calls
        return median_ms(lambda: step(channels_last, dtype), 8, 2)

    print(f"FP32: {ms(False, None):.0f} ms")
    gens.to(memory_format=torch.channels_last)
    print(f"FP32 channels-last: {ms(True, None):.0f} ms")
    print(f"bf16 autocast, channels-last: {ms(True, torch.bfloat16):.0f} ms")


if __name__ == "__main__":
    main()
