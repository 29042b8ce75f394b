"""kd_teacher_precision: the reduced-precision teacher forward, its FP32 parity check and the fall-back."""

from __future__ import annotations

import logging

import pytest
import torch

from yolo_kd.teacher_precision import resolve


def model(precision: str, device: str = "cpu"):
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.model import KDModel

    torch.manual_seed(0)
    t, s = DetectionModel("yolov8s.yaml", nc=3, verbose=False), DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    s.args = t.args = get_cfg(overrides={"imgsz": 64})
    return KDModel(t, s.to(device), method="builtin+gkd", teacher_precision=precision).to(device).train()


@pytest.fixture
def log():
    """Messages of Ultralytics' logger (it does not propagate to pytest's caplog)."""
    from ultralytics.utils import LOGGER

    records: list[str] = []
    h = logging.Handler(logging.INFO)
    h.emit = lambda r: records.append(r.getMessage())
    LOGGER.addHandler(h)
    yield records
    LOGGER.removeHandler(h)


def test_resolve():
    """fp32 is None; fp16/bf16 as named; auto: fp16 on CUDA, bf16 on a CPU with native bf16, else FP32."""
    cpu = torch.device("cpu")
    assert resolve("fp32", cpu) is None and resolve("bf16", cpu) is torch.bfloat16
    assert (
        resolve("fp16", torch.device("cuda")) is torch.float16
        and resolve("auto", torch.device("cuda")) is torch.float16
    )
    assert resolve("auto", cpu) in {torch.bfloat16, None}


def test_unknown_precision_is_one_line_naming_the_choices():
    """A training argument outside fp32/auto/fp16/bf16 stops before anything runs, naming the allowed values."""
    from yolo_kd.cfg import split_overrides
    from yolo_kd.errors import KDError

    with pytest.raises(KDError, match=r"^kd_teacher_precision='int8' is not one of fp32, auto, fp16, bf16$"):
        split_overrides({"kd_teacher_precision": "int8"})


def test_bf16_teacher_is_checked_then_used(log):
    """First batch: compared with FP32 (logged) and kept; the teacher maps are then bf16 and the loss finite."""
    from yolo_kd.bench.cost import batch_of

    m = model("bf16")
    b = batch_of(2, 64, 3, "cpu")
    loss, _ = m.loss(b)
    assert any("teacher in bfloat16" in x and "kept" in x for x in log) and m.teacher_dtype is torch.bfloat16
    _, _, _, x = m.kd_terms(b)
    assert x.t_feats[0].dtype is torch.bfloat16 and torch.isfinite(loss).all()


def test_bf16_teacher_runs_channels_last_with_the_same_terms():
    """Once kept, a bf16 CPU teacher's backbone and neck go channels-last and its head stays NCHW; the methods get NCHW
    level maps and the same loss and terms as with the teacher left in NCHW."""
    import copy

    from yolo_kd.bench.cost import batch_of
    from yolo_kd.teacher_precision import channels_last

    a, b = batch_of(2, 64, 3, "cpu"), batch_of(2, 64, 3, "cpu")
    m = model("bf16")
    m.loss(a)  # the parity check, then the layout
    assert m.teacher_dtype is torch.bfloat16
    nchw = copy.deepcopy(m)
    for layer in nchw.teacher_model.model[:-1]:
        layer.to(memory_format=torch.contiguous_format)
    w = m.teacher_model.model[0].conv.weight
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    assert m.teacher_model.model[-1].cv3[0][0].conv.weight.is_contiguous()
    det, _, terms, x = m.kd_terms(b)
    det0, _, terms0, _ = nchw.kd_terms(b)
    assert all(f.is_contiguous() for f in x.t_feats)
    torch.testing.assert_close(det, det0, rtol=1e-5, atol=1e-6)
    assert terms.keys() == terms0.keys()
    # CPUs without native bf16 emulate it and sum a channels-last convolution in another order, so a teacher map
    # element may round to the neighbouring bf16 value: one bf16 unit in the last place (2^-8 relative, 8 bits of
    # mantissa) bounds what a term, a mean over such elements, can move (seen: 2e-4 on an AMD EPYC, 0 with AMX)
    for k in terms:
        torch.testing.assert_close(terms[k], terms0[k], rtol=2**-8, atol=1e-6)
    channels_last(nchw.teacher_model)  # what the check applies; NCHW again with contiguous_format (no state kept)
    assert nchw.teacher_model.model[0].conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_layout_applies_to_a_bf16_cpu_teacher_only():
    """channels_last is for a bf16 teacher on a CPU; FP32, fp16 and CUDA teachers keep their layout."""
    from yolo_kd.teacher_precision import layout_applies

    assert layout_applies("cpu", torch.bfloat16)
    assert not any(layout_applies(d, t) for d, t in (("cpu", None), ("cpu", torch.float16), ("cuda", torch.bfloat16)))


def test_fp32_teacher_keeps_its_layout(monkeypatch):
    """An FP32 teacher (or one that fell back to FP32) stays NCHW: the exact reference."""
    import yolo_kd.teacher_precision as tp
    from yolo_kd.bench.cost import batch_of

    for precision in ("fp32", "bf16"):
        monkeypatch.setattr(tp, "REL_TOL", 0.0 if precision == "bf16" else tp.REL_TOL)  # bf16: fall back
        m = model(precision)
        m.loss(batch_of(2, 64, 3, "cpu"))
        assert m.teacher_dtype is None and m.teacher_model.model[0].conv.weight.is_contiguous()


def test_falls_back_to_fp32_when_parity_fails(monkeypatch, log):
    """Outputs outside the tolerance: one log line and an FP32 teacher from then on."""
    import yolo_kd.teacher_precision as tp
    from yolo_kd.bench.cost import batch_of

    monkeypatch.setattr(tp, "REL_TOL", 0.0)
    m = model("bf16")
    m.loss(batch_of(2, 64, 3, "cpu"))
    assert any("falling back to FP32" in x for x in log) and m.teacher_dtype is None
    _, _, _, x = m.kd_terms(batch_of(2, 64, 3, "cpu"))
    assert x.t_feats[0].dtype is torch.float32


def test_gradient_head_follows_a_bf16_teacher_only():
    """GKD's teacher-loss head runs in bf16 with a bf16 teacher (gradient within 5 % of FP32's), in FP32 otherwise;
    the loss itself stays FP32."""
    from yolo_kd.bench.cost import batch_of

    m, b = model("fp32"), batch_of(2, 64, 3, "cpu")
    with torch.no_grad():
        m.teacher_model(b["img"])
    feats = [m._teacher_feats[i].float() for i in range(3)]
    seen = []
    conv = m.teacher_model.model[-1].cv3[0][0].conv
    conv.register_forward_hook(lambda mod, i, o: seen.append(o.dtype))

    def grad(dtype):
        m.teacher_dtype = dtype
        f = [x.clone().requires_grad_(True) for x in feats]
        loss = m.teacher_task_loss(f, b)
        assert loss.dtype is torch.float32
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, f)])

    g32, g16, g_fp16 = grad(None), grad(torch.bfloat16), grad(torch.float16)
    assert seen == [torch.float32, torch.bfloat16, torch.float32]
    assert 0 < float((g16 - g32).norm() / g32.norm()) < 0.05 and torch.equal(g_fp16, g32)


def calibrate(m, device: str = "cpu") -> None:
    """Give a random-weight teacher trained-like activation scales: BN statistics from one batch (momentum 1).

    Left at their initial statistics, a random yolov8s's P5 features shrink to ~1e-8, below float16's range, so any
    fp16 check fails on the test model rather than on precision (seen on an H100, 2026-11-22).
    """
    t = m.teacher_model
    bns = [b for b in t.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    for b in bns:
        b.momentum = 1.0
    t.train()
    with torch.no_grad():
        t(torch.rand(4, 3, 64, 64, device=device))
    t.eval()


def test_parity_names_the_level_that_fails():
    """A level whose reduced-precision copy collapses is named with its FP32 norm."""
    from yolo_kd.teacher_precision import parity

    ref = [torch.ones(2, 4), torch.full((2, 4), 1e-8)]
    ok, line = parity(ref, [ref[0].clone(), torch.zeros(2, 4)], torch.zeros(2, 3), torch.zeros(2, 3))
    assert not ok and "feature level 1" in line and "1.0e+00" in line
    assert parity(ref, [r.clone() for r in ref], torch.zeros(2, 3), torch.zeros(2, 3))[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 teacher needs a CUDA GPU")
def test_fp16_teacher_on_gpu(log):
    """On CUDA, auto tries fp16 first, logs its parity check, and the step is finite whichever way it went.

    A random-weight teacher is no test of fp16 accuracy: even with trained-like BN statistics its class
    probabilities moved by 2.4e-2 in fp16 on an H100 (2026-11-23), over the tolerance, so the fall-back fired;
    the trained-teacher test below asserts that fp16 is kept.
    """
    from yolo_kd.bench.cost import batch_of

    m = model("auto", "cuda")
    calibrate(m, "cuda")
    loss, _ = m.loss(batch_of(2, 64, 3, "cuda"))
    loss.sum().backward()
    assert any("teacher in float16" in x for x in log) and torch.isfinite(loss).all()
    assert m.teacher_dtype is torch.float16 or any("falling back to FP32" in x for x in log)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 teacher needs a CUDA GPU")
def test_fp16_teacher_on_gpu_keeps_parity_on_a_trained_teacher(shared_assets):
    """A COCO-trained yolo11n teacher on COCO images: auto picks fp16 and its maps and scores stay within tolerance."""
    import numpy as np
    from ultralytics.cfg import get_cfg
    from ultralytics.data.augment import LetterBox
    from ultralytics.nn.tasks import DetectionModel, load_checkpoint
    from ultralytics.utils.patches import imread

    from yolo_kd.model import KDModel

    pt = shared_assets / "weights" / "yolo11n.pt"
    imgs = sorted((shared_assets / "datasets" / "coco128" / "images").rglob("*.jpg"))
    if not pt.exists() or len(imgs) < 4:
        pytest.skip("needs ../shared/assets (or YOLO_KD_ASSETS): yolo11n.pt and COCO128 images")
    t, _ = load_checkpoint(pt)
    s = DetectionModel("yolov8n.yaml", nc=80, verbose=False)
    s.args = t.args = get_cfg(overrides={"imgsz": 320})
    m = KDModel(t.float(), s, method="builtin", teacher_precision="auto").cuda().train()
    lb = LetterBox((320, 320), auto=False)
    x = np.stack([lb(image=imread(str(f)))[..., ::-1].transpose(2, 0, 1) for f in imgs[:4]])
    batch = {
        "img": torch.from_numpy(x.copy()).float().div(255).cuda(),
        "batch_idx": torch.zeros(1, device="cuda"),
        "cls": torch.zeros(1, 1, device="cuda"),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]], device="cuda"),
    }
    loss, _ = m.loss(batch)
    assert m.teacher_dtype is torch.float16 and torch.isfinite(loss).all()
