"""CrossKD: the cross-head path against a hand-written composition, its loss, and where gradients go."""

from __future__ import annotations

import pytest
import torch

from yolo_kd.losses.crosskd import frozen_bn_stats
from yolo_kd.losses.functional import binary_distill, giou_loss


def kd_model(teacher: str = "yolov8s.yaml", student: str = "yolov8n.yaml", method: str = "crosskd", **kd):
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.model import KDModel

    torch.manual_seed(0)
    t, s = DetectionModel(teacher, nc=3, verbose=False), DetectionModel(student, nc=3, verbose=False)
    s.args = t.args = get_cfg(overrides={"imgsz": 64})
    return KDModel(t, s, method=method, kd_args={method: kd} if kd else None).train()


def inputs(model):
    """The KDInputs of one real training forward (random batch)."""
    from yolo_kd.bench.cost import batch_of

    return model.kd_terms(batch_of(2, 64, 3, "cpu"))


def test_adapters_sized_from_heads():
    """v8n cv3 is 64 wide and v8s cv3 128: a 1x1 adapter there; cv2 is 64 in both: identity."""
    m = kd_model()
    assert isinstance(m.kd_loss.adapt["cv2"][0], torch.nn.Identity)
    a = m.kd_loss.adapt["cv3"][0]
    assert (a.in_channels, a.out_channels) == (64, 128)


@pytest.mark.parametrize("layer", [1, 2])
def test_cross_head_is_student_blocks_then_teacher_blocks(layer):
    """cross(cv3, level) == teacher.cv3[l][layer:](adapter(student.cv3[l][:layer](P_l))); reference = teacher head."""
    m = kd_model(layer=layer)
    x = inputs(m)[3]
    s_det, t_det, loss = m.student_model.model[-1], m.teacher_model.model[-1], m.kd_loss
    out = loss.cross(x, "cv3", 1)
    with torch.no_grad():
        hand = t_det.cv3[1][layer:](loss.adapt["cv3"][1](s_det.cv3[1][:layer](x.s_feats[1])))
        assert torch.allclose(out, hand.flatten(2), atol=1e-5)
        for name, key in (("cv3", "raw_scores"), ("cv2", "boxes")):  # the teacher's forward, reused, is its head
            ref = torch.cat([b(f).flatten(2) for b, f in zip(getattr(t_det, name), x.t_feats)], -1)
            assert key in x.t_head and torch.allclose(loss.teacher(x, name), ref, atol=1e-4)


def test_loss_follows_formula():
    """cls = sum BCE(z_x, p_t)|p_t - p_x| / N_pos; box = sum_a max_c p_t (1 - GIoU) / sum_a max_c p_t."""
    from ultralytics.utils.tal import make_anchors

    from yolo_kd.losses.functional import decode_boxes

    m = kd_model()
    _, _, terms, x = inputs(m)
    loss = m.kd_loss
    with torch.no_grad():
        t_det = x.teacher.detect
        z_x = torch.cat([loss.cross(x, "cv3", i) for i in range(3)], -1)
        z_t = torch.cat([t_det.cv3[i](x.t_feats[i]).flatten(2) for i in range(3)], -1)
        anchors, stride = make_anchors(x.t_feats, x.teacher.detect.stride, 0.5)
        b_x = decode_boxes(torch.cat([loss.cross(x, "cv2", i) for i in range(3)], -1), anchors, stride)
        b_t = decode_boxes(torch.cat([t_det.cv2[i](x.t_feats[i]).flatten(2) for i in range(3)], -1), anchors, stride)
        n_pos = x.assign("student")[0].sum().clamp(min=1)
        w = z_t.sigmoid().amax(1)
        cls, box = binary_distill(z_x, z_t).sum() / n_pos, (w * giou_loss(b_x, b_t)).sum() / w.sum()
        assert terms["crosskd_cls"].item() == pytest.approx(20 * cls.item(), rel=1e-4)  # weight 20 x cls_weight 1
        assert terms["crosskd_box"].item() == pytest.approx(20 * box.item(), rel=1e-4)


def test_gradient_reaches_student_and_adapter_through_frozen_teacher_only():
    """Student head blocks before the crossing, neck and adapter get gradient; the teacher gets none and its BN
    statistics, and the student's, are unchanged by the cross step."""
    m = kd_model()
    t_stats = {k: v.clone() for k, v in m.teacher_model.state_dict().items() if "running" in k}
    _, _, terms, x = inputs(m)
    s_stats = {k: v.clone() for k, v in m.student_model.state_dict().items() if "running" in k}
    m.kd_loss.cross(x, "cv3", 0)  # the cross step re-runs student blocks in train mode
    sum(terms.values()).backward()
    s_det = m.student_model.model[-1]
    assert s_det.cv3[0][0].conv.weight.grad.abs().sum() > 0  # student block before the crossing
    assert s_det.cv3[0][2].weight.grad is None  # the student's own prediction conv: GT only
    assert m.kd_loss.adapt["cv3"][0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.teacher_model.parameters())
    assert all(torch.equal(v, m.teacher_model.state_dict()[k]) for k, v in t_stats.items())
    s_after = m.student_model.state_dict()
    assert all(torch.equal(v, s_after[k]) for k, v in s_stats.items())


def test_frozen_bn_stats_restores_momentum():
    """Batch statistics are used, running statistics stay, momentum comes back."""
    bn = torch.nn.BatchNorm2d(2).train()
    with frozen_bn_stats(bn):
        bn(torch.randn(4, 2, 3, 3) + 5)
    assert torch.equal(bn.running_mean, torch.zeros(2)) and bn.momentum == 0.1


@pytest.mark.parametrize("teacher,student", [("yolov8s.yaml", "yolo26n.yaml"), ("yolo26s.yaml", "yolo11n.yaml")])
def test_cross_family_and_yolo26(teacher, student):
    """reg_max 1 and DFL heads on either side: finite terms, student gradients, a composable method."""
    m = kd_model(teacher, student, method="crosskd+cwd")
    loss, items = m.loss(__import__("yolo_kd.bench.cost", fromlist=["batch_of"]).batch_of(2, 64, 3, "cpu"))
    loss.sum().backward()
    assert torch.isfinite(loss).all() and items["crosskd_cls"] > 0 and items["crosskd_box"] > 0 and "cwd" in items
    assert any(p.grad is not None for p in m.student_model.parameters())


def test_trains_end_to_end_through_kdtrainer(train_args):
    """One real epoch: crosskd terms logged, best.pt a stock Ultralytics checkpoint with the adapters kept aside."""
    from ultralytics import YOLO

    from yolo_kd.trainer import KDTrainer

    trainer = KDTrainer(overrides={**train_args, "method": "crosskd"})
    trainer.train()
    assert {"crosskd_cls", "crosskd_box"} <= set(trainer.loss_names)
    assert YOLO(str(trainer.best)).model.model[-1].nc == 3


def test_yolo26_pair_crosses_both_branches():
    """YOLO26 teacher and student: each term is the one-to-many cross term plus the one-to-one one; the student's
    one-to-one head learns from it, its neck only through the one-to-many branch, the teacher not at all."""
    from tests.losses.inputs import kd_pair

    model, terms, x = kd_pair("crosskd")
    loss = model.kd_loss
    assert "one2one_cv3" in loss.adapt and x.t_head_o2o is not None
    with torch.no_grad():
        n_pos = x.assign("student")[0].sum().float().clamp(min=1.0)
        (c1, b1), (c2, b2) = loss.branch(x, "", n_pos), loss.branch(x, "one2one_", n_pos)
    assert terms["crosskd_cls"].item() == pytest.approx(20 * (c1 + c2).item(), rel=1e-4)
    assert terms["crosskd_box"].item() == pytest.approx(20 * (b1 + b2).item(), rel=1e-4)
    sum(terms.values()).backward()
    o2o = [p.grad for p in model.student_model.model[-1].one2one_cv3[0][0].parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in o2o)
    assert all(p.grad is None for p in model.teacher_model.parameters())


@pytest.mark.parametrize("layer", [1, 2])
def test_align_scale_crosses_the_standardised_pre_activation(layer):
    """align=True: cross = teacher.cv3[l][layer:](SiLU(z)), z = (a - mean_a) / (std_a + 1e-6) * std_t + mean_t per
    channel over (N, H, W) with unbiased stds, a = adapter(BN(conv(.))) of the student's block layer-1 before its
    SiLU, t = the same pre-activation of the teacher's block on its own neck map. Written out with plain ops."""
    m = calibrated(kd_model(align=True, layer=layer))
    x = inputs(m)[3]
    s_det, t_det, loss = m.student_model.model[-1], m.teacher_model.model[-1], m.kd_loss
    out = loss.cross(x, "cv3", 2)
    with torch.no_grad():
        sb, tb = s_det.cv3[2], t_det.cv3[2]
        s_in, t_in = sb[: layer - 1](x.s_feats[2]), tb[: layer - 1](x.t_feats[2].float())
        a = loss.adapt["cv3"][2](sb[layer - 1].bn(sb[layer - 1].conv(s_in)))
        t = tb[layer - 1].bn(tb[layer - 1].conv(t_in))
        n = a.shape[0] * a.shape[2] * a.shape[3]
        mean_a = a.sum((0, 2, 3), keepdim=True) / n
        std_a = (((a - mean_a) ** 2).sum((0, 2, 3), keepdim=True) / (n - 1)).sqrt()
        mean_t = t.sum((0, 2, 3), keepdim=True) / n
        std_t = (((t - mean_t) ** 2).sum((0, 2, 3), keepdim=True) / (n - 1)).sqrt()
        z = (a - mean_a) / (std_a + 1e-6) * std_t + mean_t
        hand = tb[layer:](z * torch.sigmoid(z))
        assert torch.allclose(out, hand.flatten(2), atol=1e-4)
        loss.align = False  # without the step the cross output differs (the test would notice a no-op align)
        assert not torch.allclose(out, loss.cross(x, "cv3", 2), atol=1e-3)


def calibrated(m):
    """The KD model with its teacher's BatchNorm running statistics set from one batch, as a trained teacher's are (a
    fresh teacher's unit statistics shrink its head outputs to their biases, whatever the input)."""
    from yolo_kd.bench.cost import batch_of

    bns = [b for b in m.teacher_model.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    for b in bns:
        b.momentum = 1.0
    m.teacher_model.train()
    with torch.no_grad():
        m.teacher_model(batch_of(2, 64, 3, "cpu")["img"])
    m.teacher_model.eval()
    for b in bns:
        b.momentum = 0.03
    return m


def test_align_scale_is_off_by_default_and_gradient_reaches_only_the_student():
    """The documented default (align=False); with align the student's blocks and adapters get gradient, the teacher
    none, and scaling the student's pre-activation by any positive factor leaves the cross output unchanged."""
    assert kd_model().kd_loss.align is False
    m = calibrated(kd_model(align=True))
    _, _, terms, x = inputs(m)
    assert terms["crosskd_cls"] > 0 and terms["crosskd_box"] > 1e-4
    sum(terms.values()).backward()
    assert all(p.grad is None for p in m.teacher_model.parameters())
    s_det = m.student_model.model[-1]
    assert s_det.cv3[0][0].conv.weight.grad.abs().sum() > 0 and m.kd_loss.adapt["cv3"][0].weight.grad is not None
    with torch.no_grad():
        before = m.kd_loss.cross(x, "cv3", 0)
        s_det.cv3[0][0].bn.weight.mul_(7.0)
        s_det.cv3[0][0].bn.bias.mul_(7.0)  # the student's pre-activation x7 (batch statistics: BN(conv) scales)
        assert torch.allclose(m.kd_loss.cross(x, "cv3", 0), before, atol=1e-4)


def test_cls_norm_score_is_the_teacher_score_weighted_mean():
    """cls_norm='score': cls = sum_a w_a sum_c BCE(z_x, p_t)|p_t - p_x| / sum_a w_a, w_a = max_c p_t (by hand); the
    default stays the paper's / N_pos; other values are refused."""
    from yolo_kd.errors import KDError

    assert kd_model().kd_loss.cls_norm == "pos"
    m = kd_model(cls_norm="score")
    _, _, terms, x = inputs(m)
    loss = m.kd_loss
    with torch.no_grad():
        z_x = torch.cat([loss.cross(x, "cv3", i) for i in range(3)], -1)
        z_t = torch.cat([x.teacher.detect.cv3[i](x.t_feats[i]).flatten(2) for i in range(3)], -1)
        p_t, p_x = torch.sigmoid(z_t), torch.sigmoid(z_x)
        bce = -(p_t * torch.log(p_x) + (1 - p_t) * torch.log(1 - p_x))
        w = p_t.amax(1)
        cls = (w * (bce * (p_t - p_x).abs()).sum(1)).sum() / w.sum()
    assert terms["crosskd_cls"].item() == pytest.approx(20 * cls.item(), rel=1e-3)
    with pytest.raises(KDError, match="cls_norm"):
        kd_model(cls_norm="mean")


def test_crosskd_documented_defaults():
    """Every documented default of crosskd is pinned: a drift would change the benchmarked configuration."""
    from yolo_kd.losses import method_params

    assert method_params("crosskd") == {
        "weight": 20.0,
        "cls_weight": 1.0,
        "box_weight": 1.0,
        "layer": 1,
        "align": False,
        "cls_norm": "pos",
    }


def test_loss_by_hand_with_a_varied_teacher_and_cls_weight_two():
    """The formula written out (BCE with the teacher's probability as target times |p_t - p_x|, over N_pos; 1 - GIoU
    with its enclosing box, weighted by the teacher's top class probability), on a teacher whose scores and boxes vary
    across anchors so the weighting matters; crosskd_cls_weight=2 multiplies the cls term's weight 20."""
    import torch.nn.functional as F
    from ultralytics.utils.tal import make_anchors

    from yolo_kd.losses.functional import decode_boxes

    m = kd_model(cls_weight=2.0)
    t_det = m.teacher_model.model[-1]
    torch.manual_seed(7)
    with torch.no_grad():
        for seq in (*t_det.cv2, *t_det.cv3):
            torch.nn.init.normal_(seq[-1].weight, std=0.3)
            seq[-1].bias.normal_(std=2.0)
    _, _, terms, x = inputs(m)
    loss = m.kd_loss
    with torch.no_grad():
        z_x = torch.cat([loss.cross(x, "cv3", i) for i in range(3)], -1)
        z_t = torch.cat([t_det.cv3[i](x.t_feats[i]).flatten(2) for i in range(3)], -1)
        p_t, p_x = z_t.sigmoid(), z_x.sigmoid()
        bce = -(p_t * F.logsigmoid(z_x) + (1 - p_t) * F.logsigmoid(-z_x))
        cls = (bce * (p_t - p_x).abs()).sum() / x.assign("student")[0].sum().clamp(min=1)
        anchors, stride = make_anchors(x.t_feats, t_det.stride, 0.5)
        bx = decode_boxes(torch.cat([loss.cross(x, "cv2", i) for i in range(3)], -1), anchors, stride)
        bt = decode_boxes(torch.cat([t_det.cv2[i](x.t_feats[i]).flatten(2) for i in range(3)], -1), anchors, stride)
        area = lambda b: (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)  # noqa: E731
        lo, hi = torch.maximum(bx[..., :2], bt[..., :2]), torch.minimum(bx[..., 2:], bt[..., 2:])
        inter = (hi - lo).clamp(min=0).prod(-1)
        union = area(bx) + area(bt) - inter
        c_lo, c_hi = torch.minimum(bx[..., :2], bt[..., :2]), torch.maximum(bx[..., 2:], bt[..., 2:])
        enclose = (c_hi - c_lo).prod(-1)
        giou_loss = 1 - (inter / union - (enclose - union) / enclose)
        w = p_t.max(1).values
        box = (w * giou_loss).sum() / w.sum()
        assert abs(box - giou_loss.mean()) > 1e-3 * giou_loss.mean()  # the weighting matters here
        assert (enclose > union + 1e-3).any()  # boxes whose enclosing box is larger than their union
    assert terms["crosskd_cls"].item() == pytest.approx(40 * cls.item(), rel=1e-4)
    assert terms["crosskd_box"].item() == pytest.approx(20 * box.item(), rel=1e-4)


def test_yolo26_one_to_one_branch_sends_no_gradient_to_the_neck():
    """As Ultralytics' own one-to-one branch, the crossed o2o path reads detached neck maps: its terms give the
    student's neck maps no gradient, while the one-to-many terms do."""
    from tests.losses.inputs import kd_pair

    model, _, x = kd_pair("crosskd")
    n_pos = x.assign("student")[0].sum().float().clamp(min=1.0)
    c2, b2 = model.kd_loss.branch(x, "one2one_", n_pos)
    g2 = torch.autograd.grad(c2 + b2, x.s_feats, allow_unused=True, retain_graph=True)
    assert all(g is None or g.abs().sum() == 0 for g in g2)
    c1, b1 = model.kd_loss.branch(x, "", n_pos)
    g1 = torch.autograd.grad(c1 + b1, x.s_feats, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in g1)
