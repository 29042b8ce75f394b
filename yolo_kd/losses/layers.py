"""Trainable layers shared by the distillation methods (adapters, projectors, attention blocks)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

MIN_CELLS = 256  # smallest map (H * W) computed as a product (D5: faster from 20 x 20 up, not at 10 x 10)


class Conv1x1(nn.Conv2d):
    """``nn.Conv2d(c1, c2, 1)`` computed on the CPU as one batched matrix product: same parameters and state dict.

    For a (B, C1, H, W) map a 1x1 convolution is ``W (C2, C1) @ x (B, C1, H*W)`` plus the bias. oneDNN's convolution
    reorders NCHW maps into its blocked layout and back on every call, forward and backward; the product reads them as
    they are. Forward + backward at batch 8 on the 2-core Xeon, two runs of ``python benchmarks/layout_probe.py``
    (docs/benchmarks.md D5): 64 -> 128 channels at 40 x 40 5.3-9.8 -> 3.5-4.5 ms, 128 -> 128 7.9-9.0 -> 5.8-5.9,
    256 -> 256 at 20 x 20 6.0-6.1 -> 4.8-4.9; at 10 x 10 it is no faster, so maps under ``MIN_CELLS`` cells keep the
    convolution. The result equals the convolution's up to FP32 summation order (tests/losses/test_layers.py). On CUDA,
    under autocast and for any other dtype the convolution runs.
    """

    def __init__(self, c1: int, c2: int, bias: bool = True) -> None:
        """A 1x1, stride-1, ungrouped convolution from ``c1`` to ``c2`` channels."""
        super().__init__(c1, c2, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """``W @ x + b`` per image on the CPU in FP32, else ``nn.Conv2d``'s forward."""
        w = self.weight
        cpu = x.device.type == "cpu" and not torch.is_autocast_enabled("cpu")
        if not cpu or x.dtype != w.dtype or x.dim() != 4 or x.shape[2] * x.shape[3] < MIN_CELLS:
            return super().forward(x)
        b, c, h, wd = x.shape
        wt = w.view(1, self.out_channels, c).expand(b, -1, -1)
        flat = x.reshape(b, c, h * wd)
        if self.bias is None:
            y = torch.bmm(wt, flat)
        else:
            y = torch.baddbmm(self.bias.view(1, -1, 1).expand(b, -1, h * wd), wt, flat)
        return y.view(b, self.out_channels, h, wd)
