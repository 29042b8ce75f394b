"""Golden values and gradient flow for every distillation method, on tiny hand-made tensors."""

from __future__ import annotations

import functools

import pytest
import torch

from tests.losses.inputs import S_CH, T_CH, make_inputs
from yolo_kd.errors import KDError
from yolo_kd.losses import LOSSES, build_loss, parse_method


def test_registry_and_parse():
    """Every method is registered, combination keys split, unknown keys get a hint."""
    assert {"mimic", "builtin", "kd", "ld", "gkd", "bmfi"} <= set(LOSSES)
    spec = parse_method(" gkd + bmfi ", {"gkd": {"weight": 3}})
    assert spec.keys == ("gkd", "bmfi") and spec.name == "gkd+bmfi" and spec.args == {"gkd": {"weight": 3}, "bmfi": {}}
    assert parse_method(spec) is spec
    with pytest.raises(KDError, match="Did you mean 'mimic'"):
        parse_method("mimik")
    with pytest.raises(KDError, match="negative"):
        parse_method("mimic", {"mimic": {"weight": -1}})
    with pytest.raises(KDError, match="Did you mean"):
        parse_method("gkd", {"gkd": {"weigth": 1}})


def test_spec_requires_is_the_union_and_classes_follow_scores_or_task_loss():
    """``requires`` of ``a+b`` is the union of its parts', on the spec and on the built Combined alike."""
    spec = parse_method("gkd+bmfi+ld")
    assert spec.requires == {"box_branch", "task_loss", "scores", "dfl"} == spec.build([4], [4]).requires
    assert parse_method("gkd").needs_classes and parse_method("kd").needs_classes
    assert not parse_method("bmfi+cwd+crosskd").needs_classes  # crosskd stays in the teacher's classes
    assert parse_method("crosskd").requires == {"box_branch", "detect_modules"} and not parse_method("mgd").requires


@pytest.mark.parametrize(
    ("method", "args", "match"),
    [
        ("aid", {"mode": "box"}, "aid_mode must be instance or level"),
        ("crosskd", {"layer": 3}, "crosskd_layer=3 must be 1 or 2"),
        ("crosskd", {"cls_norm": "sum"}, "crosskd_cls_norm='sum' must be pos"),
        ("gkd", {"map": "score", "targets": "teacher"}, "map=score reads the teacher's assignment"),
        ("gkd", {"source": "both"}, "source must be teacher|student"),
        ("gkdpaper", {"map": "box"}, "map must be one of"),
        ("mgd", {"ratio": 1.0}, r"mgd_ratio=1.0 must be in \[0, 1\)"),
        ("rm", {"assigner": "both"}, "rm_assigner must be student or teacher"),
        ("bmfi", {"adapter": "linear"}, "bmfi_adapter='linear' is not one of conv, mlp, align"),
    ],
)
def test_bad_choices_fail_when_parsed_without_building(method, args, match, monkeypatch):
    """Choices and ranges are checked by the method's ``check_args`` at parse time: nothing is instantiated."""

    @functools.wraps(LOSSES[method].__init__)  # keeps the signature the parameter check reads
    def no_build(*a, **k):
        raise AssertionError("parse_method built the method")

    monkeypatch.setattr(LOSSES[method], "__init__", no_build)
    with pytest.raises(KDError, match=match):
        parse_method(method, {method: args})
    parse_method(method)  # the defaults pass, still without building


def test_register_refuses_unknown_requires_and_the_old_flags():
    """A plugin declaring an unknown requirement, or a flag from before ``requires``, gets one line at register."""
    from yolo_kd.losses import DistillLoss, register

    class Typo(DistillLoss):
        requires = frozenset({"score"})

    class Old(DistillLoss):
        uses_head = True

    with pytest.raises(KDError, match=r"requires \['score'\], unknown; choose from scores"):
        register("typo")(Typo)
    with pytest.raises(KDError, match="sets uses_head; declare requires"):
        register("old")(Old)
    assert "typo" not in LOSSES and "old" not in LOSSES


# crosskd runs the heads (test_crosskd.py); maskkd and kptkd read masks and keypoints (test_maskkd.py, test_kptkd.py,
# test_tasks.py)
TENSOR_ONLY = [k for k in sorted(LOSSES) if "detect_modules" not in LOSSES[k].requires and not LOSSES[k].task]


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


def test_a_one_term_method_may_omit_names_and_return_a_scalar():
    """``register`` names the single term after the key; a bare scalar is that term; with two names it is refused."""
    from yolo_kd.losses import register
    from yolo_kd.losses.base import DistillLoss

    @register("bare")
    class Bare(DistillLoss):
        def forward(self, x):
            return sum((s.float().mean() - t.float().mean()) ** 2 for s, t in zip(x.s_feats, x.t_feats))

    try:
        loss = build_loss("mimic+bare", {}, S_CH, T_CH)
        x = make_inputs()
        out = loss(x)
        assert Bare.names == ("bare",) and loss.names == ("mimic", "bare") and list(out) == ["mimic", "bare"]
        assert out["bare"] == Bare(S_CH, T_CH)(x)  # the scalar itself, under the key
        two = Bare(S_CH, T_CH)
        two.names = ("bare_a", "bare_b")
        with pytest.raises(KDError, match="returned one scalar but declares names"):
            two.check(two(x))
    finally:
        LOSSES.pop("bare")
