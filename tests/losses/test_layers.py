"""Conv1x1: the batched-product 1x1 convolution equals nn.Conv2d's (see yolo_kd/losses/layers.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from yolo_kd.losses.base import adapters
from yolo_kd.losses.layers import MIN_CELLS, Conv1x1


def path(y: torch.Tensor) -> str:
    """The autograd node that computed a Conv1x1 output: the product (Baddbmm/Bmm) or the convolution."""
    fn = y.grad_fn
    return type(fn.next_functions[0][0] if type(fn).__name__ == "ViewBackward0" else fn).__name__


@pytest.mark.parametrize("hw", [(16, 16), (1, 2)])
def test_conv1x1_golden(hw: tuple[int, int]):
    """Hand-computed: y[o] = sum_c W[o, c] x[c] + b[o] at every cell; a map of MIN_CELLS cells or more takes the
    product, a smaller one the convolution."""
    m = Conv1x1(2, 1)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([2.0, -1.0]).view(1, 2, 1, 1))
        m.bias.fill_(0.5)
    a = torch.arange(hw[0] * hw[1], dtype=torch.float32).view(1, 1, *hw)
    x = torch.cat([a, torch.full_like(a, 4.0)], 1)  # channel 0 = cell index, channel 1 = 4
    y = m(x)
    assert torch.equal(y, 2 * a - 4 + 0.5)
    assert path(y) == ("BaddbmmBackward0" if hw[0] * hw[1] >= MIN_CELLS else "ConvolutionBackward0")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(3, 5, 16, 16, 6), (2, 16, 20, 24, 8), (1, 4, 30, 30, 1), (2, 3, 5, 5, 2)])
def test_conv1x1_matches_conv2d_values_and_gradients(shape: tuple[int, ...], bias: bool):
    """Forward and the gradients of input, weight and bias equal F.conv2d's to FP32 rounding (both paths)."""
    b, c, h, w, o = shape
    torch.manual_seed(0)
    m = Conv1x1(c, o, bias=bias)
    x = torch.randn(b, c, h, w, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    w2 = m.weight.detach().clone().requires_grad_(True)
    b2 = m.bias.detach().clone().requires_grad_(True) if bias else None
    g = torch.randn(b, o, h, w)
    y = m(x)
    assert path(y) in {"BaddbmmBackward0", "BmmBackward0"} or h * w < MIN_CELLS
    y.backward(g)
    F.conv2d(x2, w2, b2).backward(g)
    torch.testing.assert_close(m(x), F.conv2d(x2, w2, b2), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.weight.grad, w2.grad, rtol=1e-4, atol=1e-4)  # sums over B * H * W cells
    if bias:
        torch.testing.assert_close(m.bias.grad, b2.grad, rtol=1e-4, atol=1e-4)


def test_conv1x1_is_a_conv2d_with_the_same_state_and_init():
    """Same class family, state-dict keys and shapes, and the same initial weights from the same seed (resume, warm)."""
    torch.manual_seed(3)
    ref = nn.Conv2d(6, 4, 1)
    torch.manual_seed(3)
    m = Conv1x1(6, 4)
    assert isinstance(m, nn.Conv2d)
    assert {k: v.shape for k, v in m.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    assert all(torch.equal(m.state_dict()[k], v) for k, v in ref.state_dict().items())
    m.load_state_dict(ref.state_dict())  # an old checkpoint's adapters load as they are


def test_conv1x1_takes_the_convolution_under_autocast_and_other_dtypes():
    """bf16 autocast and a float64 input run nn.Conv2d's forward (same dtype out as the convolution's)."""
    m = Conv1x1(3, 2)
    x = torch.randn(1, 3, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert m(x).dtype == F.conv2d(x, m.weight, m.bias).dtype == torch.bfloat16
    m64 = Conv1x1(3, 2).double()
    torch.testing.assert_close(m64(x.double()), F.conv2d(x.double(), m64.weight, m64.bias))


def test_adapters_use_conv1x1():
    """Every 1x1 of the conv, align and mlp adapters is a Conv1x1 (identity kept where align's widths match)."""
    conv, align, mlp = (adapters([4, 8], [8, 8], k) for k in ("conv", "align", "mlp"))
    assert all(type(a) is Conv1x1 for a in conv)
    assert type(align[0]) is Conv1x1 and type(align[1]) is nn.Identity
    assert all(type(mlp[i][j]) is Conv1x1 for i in range(2) for j in (0, 2))
