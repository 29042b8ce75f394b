"""Golden values and gradient flow for every distillation method, on tiny hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from yolo_kd.errors import KDError
from yolo_kd.losses import LOSSES, build_loss, check_method_args, split_method
from yolo_kd.losses.base import KDInputs
from yolo_kd.losses.builtin import Builtin
from yolo_kd.losses.functional import binary_kl

S_CH, T_CH = [4, 6, 8], [6, 8, 10]


def identity_adapters(loss, value: float = 1.0):
    """Set every 1x1 adapter to a (padded) identity so values are hand-computable."""
    for conv in loss.adapt:
        torch.nn.init.zeros_(conv.bias)
        with torch.no_grad():
            conv.weight.zero_()
            for i in range(min(conv.in_channels, conv.out_channels)):
                conv.weight[i, i] = value


def make_inputs(bs: int = 2, nc: int = 3, reg_max: int = 16, with_boxes: bool = True, seed: int = 0) -> KDInputs:
    """Random KDInputs at strides 8/16/32 of a 64x64 image; student maps require grad, teacher maps do not."""
    g = torch.Generator().manual_seed(seed)
    sizes = [8, 4, 2]
    s = [torch.randn(bs, c, h, h, generator=g).requires_grad_(True) for c, h in zip(S_CH, sizes)]
    t = [torch.randn(bs, c, h, h, generator=g) for c, h in zip(T_CH, sizes)]
    a = sum(h * h for h in sizes)
    s_head = {
        "boxes": torch.randn(bs, 4 * reg_max, a, generator=g).requires_grad_(True),
        "scores": torch.randn(bs, nc, a, generator=g).requires_grad_(True),
        "feats": s,
    }
    t_head = {
        "boxes": torch.randn(bs, 4 * reg_max, a, generator=g),
        "scores": torch.randn(bs, nc, a, generator=g),
        "feats": t,
        "pred": None,
    }
    n = 2 if with_boxes else 0
    batch = {
        "img": torch.zeros(bs, 3, 64, 64),
        "batch_idx": torch.tensor([0.0, 1.0][:n]),
        "cls": torch.tensor([[0.0], [2.0]][:n]).view(-1, 1),
        "bboxes": torch.tensor([[0.3, 0.3, 0.25, 0.25], [0.6, 0.5, 0.5, 0.4]][:n]).view(-1, 4),
    }
    fg = torch.zeros(bs, a, dtype=torch.bool)
    if with_boxes:
        fg[0, 3], fg[0, 4], fg[1, 10] = True, True, True
    grid = [torch.meshgrid(torch.arange(h) + 0.5, torch.arange(h) + 0.5, indexing="xy") for h in sizes]
    anchors = torch.cat([torch.stack(g, -1).view(-1, 2) for g in grid])
    stride = torch.cat([torch.full((h * h, 1), 64.0 / h) for h in sizes])
    gt_box = torch.tensor([[8.0, 8.0, 24.0, 24.0], [22.4, 19.2, 54.4, 44.8]])[:bs]
    target = gt_box[:, None].expand(bs, a, 4).clone()
    gt_idx = torch.zeros(bs, a, dtype=torch.long)

    def teacher_task_loss(feats, _batch):
        return sum((f**2).mean() * (i + 1) for i, f in enumerate(feats)) + (feats[0][:, 0] * 3).sum()

    return KDInputs(
        s_feats=s,
        t_feats=t,
        s_head=s_head,
        t_head=t_head,
        batch=batch,
        strides=[8.0, 16.0, 32.0],
        task_loss=sum((f**2).mean() for f in s),
        teacher_task_loss=teacher_task_loss,
        assign=lambda side: (fg, gt_idx, target, anchors, stride),
    )


def test_registry_and_split():
    """Every method is registered, combination keys split, unknown keys get a hint."""
    assert {"mimic", "builtin", "kd", "ld", "gkd", "bmfi"} <= set(LOSSES)
    assert split_method("gkd+bmfi") == ["gkd", "bmfi"]
    with pytest.raises(KDError, match="Did you mean 'mimic'"):
        split_method("mimik")
    with pytest.raises(KDError, match="negative"):
        check_method_args("mimic", {"mimic": {"weight": -1}})
    with pytest.raises(KDError, match="Did you mean"):
        check_method_args("gkd", {"gkd": {"weigth": 1}})


TENSOR_ONLY = [k for k in sorted(LOSSES) if not LOSSES[k].needs_heads]  # crosskd runs the heads: test_crosskd.py


@pytest.mark.parametrize("method", [*TENSOR_ONLY, "gkd+bmfi", "mimic+kd+ld", "aid+rm+pfi+skd+tar", "bckd+builtin"])
def test_terms_finite_named_and_grad_to_student_only(method):
    """Keys equal names, values finite, grads reach student maps/head and method params, never the teacher."""
    loss = build_loss(method, {}, S_CH, T_CH)
    x = make_inputs()
    out = loss(x)
    assert tuple(out) == loss.names and all(torch.isfinite(v) for v in out.values())
    total = sum(out.values())
    total.backward()
    assert all(t.grad is None for t in x.t_feats)
    student_grads = [p.grad for p in (*x.s_feats, x.s_head["scores"], x.s_head["boxes"]) if p.grad is not None]
    assert student_grads and any(g.abs().sum() > 0 for g in student_grads)
    params = [p for p in loss.parameters()]
    if params:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


@pytest.mark.parametrize("method", TENSOR_ONLY)
def test_no_ground_truth_is_finite(method):
    """A batch without any box gives finite terms."""
    out = build_loss(method, {}, S_CH, T_CH)(make_inputs(with_boxes=False))
    assert all(torch.isfinite(v) for v in out.values())


def test_mimic_golden():
    """Identity adapter: L = weight * sum_l mean((t - s_padded)^2)."""
    loss = build_loss("mimic", {"mimic": {"weight": 1.0}}, [1, 1, 1], [2, 1, 1])
    identity_adapters(loss)
    s = [torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[0.0]]]]), torch.tensor([[[[3.0]]]])]
    t = [torch.tensor([[[[2.0, 2.0]], [[1.0, -1.0]]]]), torch.tensor([[[[1.0]]]]), torch.tensor([[[[3.0]]]])]
    x = KDInputs(s_feats=s, t_feats=t, s_head={}, t_head={}, batch={})
    # level 0: diffs (1, 0 | 1, -1) -> mean 3/4; level 1: 1; level 2: 0
    assert loss(x)["mimic"].item() == pytest.approx(0.75 + 1.0)


def test_builtin_matches_ultralytics_loss_sl2():
    """Our builtin equals Ultralytics' DistillationModel.loss_sl2 with the same projector and teacher scores."""
    from ultralytics.nn.distill_model import DistillationModel

    loss = build_loss("builtin", {}, S_CH, T_CH)
    x = make_inputs()
    ours = loss(x)["builtin"]
    scores = [
        p.sigmoid().max(dim=1, keepdim=True).values
        for p in torch.split(x.t_head["scores"], [f.shape[-2] * f.shape[-1] for f in x.t_feats], dim=-1)
    ]
    ref = sum(
        DistillationModel.loss_sl2(None, loss.projector[i](x.s_feats[i]), x.t_feats[i], i, tuple(scores)) * 6.0
        for i in range(3)
    )
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    assert Builtin.score_weighted_l2(
        torch.ones(1, 1, 1, 2), torch.zeros(1, 1, 1, 2), torch.tensor([[[1.0, 3.0]]])
    ).item() == pytest.approx(1.0)


def test_kd_golden():
    """Binary KL with temperature and teacher-confidence weights, by hand for 2 anchors x 1 class."""
    assert binary_kl(torch.tensor(0.3), torch.tensor(0.3)).item() == pytest.approx(0.0, abs=1e-7)
    zs, zt = torch.tensor([[[0.0, 1.0]]]), torch.tensor([[[2.0, -1.0]]])  # (B=1, nc=1, A=2)
    loss = build_loss("kd", {"kd": {"weight": 1.0, "temperature": 2.0}}, S_CH, T_CH)
    x = KDInputs(s_feats=[], t_feats=[], s_head={"scores": zs}, t_head={"scores": zt}, batch={})

    def kl(ps, pt):
        return pt * math.log(pt / ps) + (1 - pt) * math.log((1 - pt) / (1 - ps))

    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    w = [sig(2.0), sig(-1.0)]
    kls = [kl(sig(0.0 / 2), sig(2.0 / 2)), kl(sig(1.0 / 2), sig(-1.0 / 2))]
    expected = 4 * (w[0] * kls[0] + w[1] * kls[1]) / (w[0] + w[1])
    assert loss(x)["kd"].item() == pytest.approx(expected, rel=1e-5)


def test_ld_golden():
    """LD at one positive anchor, reg_max=2: T^2 * mean over sides of KL, weighted by student max score."""
    reg = 2
    s_box = torch.zeros(1, 4 * reg, 2)
    t_box = torch.zeros(1, 4 * reg, 2)
    t_box[0, 0, 0] = 4.0  # side 0 of anchor 0: teacher prefers bin 0
    fg = torch.tensor([[True, False]])
    x = KDInputs(
        s_feats=[],
        t_feats=[],
        s_head={"boxes": s_box, "scores": torch.zeros(1, 1, 2)},
        t_head={"boxes": t_box},
        batch={},
        assign=lambda side: (fg,),
    )
    loss = build_loss("ld", {"ld": {"weight": 1.0, "temperature": 2.0}}, S_CH, T_CH)
    p = torch.softmax(torch.tensor([2.0, 0.0]), 0)  # teacher side 0 at T=2
    kl0 = (p * (p.log() - math.log(0.5))).sum().item()
    assert loss(x)["ld"].item() == pytest.approx(4 * kl0 / 4, rel=1e-5)


def test_adapter_kinds():
    """``adapter=mlp`` is Ultralytics' projector (conv-ReLU-conv) per level; an unknown kind is a one-line error."""
    from yolo_kd.losses.base import adapters

    mlp = adapters([16, 32], [64, 128], "mlp")
    assert [type(m[1]).__name__ for m in mlp] == ["ReLU", "ReLU"] and mlp[1][2].out_channels == 128
    assert build_loss("gkd", {"gkd": {"adapter": "mlp"}}, [16], [64]).adapt[0][0].in_channels == 16
    with pytest.raises(KDError, match="adapter='linear' is not one of conv, mlp"):
        build_loss("mimic", {"mimic": {"adapter": "linear"}}, [16], [64])


def _kd_model_and_logged_loss(teacher: str, method: str, poison, caplog) -> tuple:
    """Build a KDModel, let ``poison(model)`` break it, and return (loss, items) with Ultralytics' warnings captured."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import LOGGER

    from yolo_kd.bench.cost import batch_of
    from yolo_kd.model import KDModel

    s, t = DetectionModel("yolov8n.yaml", nc=3, verbose=False), DetectionModel(teacher, nc=3, verbose=False)
    s.args = t.args = get_cfg(overrides={"imgsz": 64})
    model = KDModel(t, s, method=method).train()
    poison(model)
    propagate, LOGGER.propagate = LOGGER.propagate, True
    try:
        with caplog.at_level("WARNING"):
            return model, *model.loss(batch_of(2, 64, 3, "cpu"))
    finally:
        LOGGER.propagate = propagate


def test_nonfinite_term_is_skipped_and_reported(caplog):
    """A NaN KD term is zeroed for the batch, named in a warning, and the total loss stays finite."""

    def poison(m):
        m.kd_loss.parts["kd"].temperature = float("nan")

    model, loss, items = _kd_model_and_logged_loss("yolov8n.yaml", "mimic+kd", poison, caplog)
    assert torch.isfinite(loss).all() and items["kd"] == 0 and items["mimic"] > 0
    assert "non-finite distillation term(s) kd (method mimic+kd)" in caplog.text and model.nonfinite_steps == 1
    assert "finite inputs on every level" in caplog.text  # the inputs are fine: the method's own arithmetic


def test_nonfinite_report_names_the_level(caplog):
    """NaN in the teacher's P5 map only: the warning names the method and 'teacher P5 map', not the other levels."""

    def poison(m):
        for p in m.teacher_model.model[m.feats_idx[2]].parameters():  # the last neck block: P5 only
            p.data.fill_(float("nan"))

    _, loss, items = _kd_model_and_logged_loss("yolov8s.yaml", "cwd", poison, caplog)
    assert torch.isfinite(loss).all() and items["cwd"] == 0
    assert "cwd (method cwd) at teacher P5 map" in caplog.text and "P3" not in caplog.text and "P4" not in caplog.text


def test_registry_contract_for_plugins():
    """register gives the key; terms that differ from names fail on the first batch naming the method; positional
    hyper-parameters are visible and settable like keyword-only ones."""
    from torch import nn

    from yolo_kd.losses import method_params, register
    from yolo_kd.losses.base import DistillLoss

    @register("badnames")
    class BadNames(DistillLoss):
        names = ("badnames",)

        def __init__(self, s_channels, t_channels, weight: float = 2.0):
            super().__init__(s_channels, t_channels)
            self.weight = weight
            self.p = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return {"other": self.weight * self.p}

    try:
        assert BadNames.key == "badnames" and method_params("badnames") == {"weight": 2.0}
        loss = build_loss("badnames", {"badnames": {"weight": 3.0}}, S_CH, T_CH)
        assert loss.weight == 3.0
        with pytest.raises(KDError, match=r"method 'badnames' returned terms \['other'\] but declares names"):
            loss.check(loss(make_inputs()))
        combo = build_loss("mimic+badnames", {}, S_CH, T_CH)
        with pytest.raises(KDError, match="method 'badnames'"):
            combo(make_inputs())
    finally:
        LOSSES.pop("badnames")
