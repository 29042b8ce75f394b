"""Time MGD's generators forward + backward: FP32, FP32 channels-last, bf16 autocast (docs/benchmarks.md D4 cost, D5).

``python benchmarks/mgd_generator_probe.py``: the generators MGD builds for a yolov8s teacher (128, 256, 512 channels)
on the maps of a 320 px batch of 8 (40, 20, 10 cells); medians of 8 after 2 warm-up calls. Each FP32 row also gives the
rate it reaches (forward + both backward products of the six 3x3 convolutions), beside the rate of one large FP32
matrix product on this CPU (4096 x 4096 x 4096), the most its cores do in FP32.
"""

from __future__ import annotations

import torch

from yolo_kd.bench.edge import median_ms
from yolo_kd.losses.mgd import MGD


def main() -> None:
    """Print the FP32 product rate and the three medians (FP32 ones with their rate)."""
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

    flops = 3 * sum(2 * 2 * 9 * c * c * s * s * 8 for c, s in zip(chans, sizes))  # 2 convs, x3: fwd + 2 bwd
    a = torch.randn(4096, 4096)
    gemm = 2 * 4096**3 / median_ms(lambda: a @ a, 8, 2) / 1e6  # GFLOP/s
    print(f"FP32 matrix product 4096^3: {gemm:.0f} GFLOP/s; the generators: {flops / 1e9:.0f} GFLOP per step")
    t = ms(False, None)
    print(f"FP32: {t:.0f} ms ({flops / t / 1e6:.0f} GFLOP/s)")
    gens.to(memory_format=torch.channels_last)
    t = ms(True, None)
    print(f"FP32 channels-last: {t:.0f} ms ({flops / t / 1e6:.0f} GFLOP/s)")
    print(f"bf16 autocast, channels-last: {ms(True, torch.bfloat16):.0f} ms")


if __name__ == "__main__":
    main()
