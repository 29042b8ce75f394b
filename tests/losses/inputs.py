"""Tiny hand-made KDInputs shared by the per-method golden tests."""

from __future__ import annotations

import math

import torch

from yolo_kd.losses.base import Assignment, KDInputs, TeacherView

S_CH, T_CH = [4, 6, 8], [6, 8, 10]  # student / teacher channels of the three levels


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

    def teacher_task_loss(feats, _batch, teacher_classes=False):
        return sum((f**2).mean() * (i + 1) for i, f in enumerate(feats)) + (feats[0][:, 0] * 3).sum()

    return KDInputs(
        s_feats=s,
        t_feats=t,
        s_head=s_head,
        t_head=t_head,
        batch=batch,
        strides=[8.0, 16.0, 32.0],
        task_loss=sum((f**2).mean() for f in s),
        teacher=TeacherView(task_loss=teacher_task_loss),
        assign=lambda side: Assignment(fg, gt_idx, target, anchors, stride),
    )


def seed_level(
    s_scores: list[float],
    t_scores: list[float],
    fg: list[bool],
    gt_idx: list[int] | None = None,
    s_box: list[list[float]] | None = None,
    t_box: list[list[float]] | None = None,
    gts: list[list[float]] | None = None,
    progress: float = 0.0,
    c: int = 2,
) -> KDInputs:
    """One image, one 1 x A level at stride 8, nc = 1, reg_max = 1 heads (ltrb in cells), GTs of class 0."""
    a = len(s_scores)
    gts = gts or [[0.0, 0.0, 8.0, 8.0]]
    boxes = torch.tensor(gts)
    img = torch.zeros(1, 3, 8, 8 * a)
    xywh = torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1) / torch.tensor([8 * a, 8] * 2)
    batch = {"img": img, "batch_idx": torch.zeros(len(gts)), "cls": torch.zeros(len(gts), 1), "bboxes": xywh}
    j = torch.tensor([gt_idx or [0] * a])
    target = boxes[j[0]][None]
    anchors = torch.stack([torch.arange(a) + 0.5, torch.full((a,), 0.5)], 1)
    ltrb = [[0.5, 0.5, 0.5, 0.5]] * a
    head = lambda sc, bx: {"scores": torch.tensor([[sc]]), "boxes": torch.tensor(bx or ltrb).T[None]}  # noqa: E731
    s_head, t_head = head(s_scores, s_box), head(t_scores, t_box)
    s_head["scores"].requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    return KDInputs(
        s_feats=[torch.randn(1, c, 1, a, generator=g).requires_grad_(True)],
        t_feats=[torch.randn(1, c, 1, a, generator=g)],
        s_head=s_head,
        t_head=t_head,
        batch=batch,
        strides=[8.0],
        progress=progress,
        assign=lambda side: (torch.tensor([fg]), j, target, anchors, torch.full((a, 1), 8.0)),
    )


def kl_of_softmax(t: list[float], s: list[float]) -> float:
    """KL(softmax(t) || softmax(s)) by hand."""
    pt = [math.exp(v) / sum(math.exp(u) for u in t) for v in t]
    ps = [math.exp(v) / sum(math.exp(u) for u in s) for v in s]
    return sum(p * math.log(p / q) for p, q in zip(pt, ps))


def sig(v: float) -> float:
    """Logistic function."""
    return 1 / (1 + math.exp(-v))


def peer_level(s: torch.Tensor, t: torch.Tensor, boxes: list[list[float]] | None = None, stride: float = 8.0):
    """KDInputs with a single level and boxes given as xyxy pixels on image 0."""
    h, w = t.shape[-2:]
    b = torch.tensor(boxes or [], dtype=torch.float32).view(-1, 4)
    img_h, img_w = h * stride, w * stride
    xywh = torch.cat([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], 1) / torch.tensor([img_w, img_h] * 2)
    batch = {"img": torch.zeros(t.shape[0], 3, int(img_h), int(img_w)), "batch_idx": torch.zeros(len(b)),
             "cls": torch.zeros(len(b), 1), "bboxes": xywh}  # fmt: skip
    return KDInputs(s_feats=[s], t_feats=[t], s_head={}, t_head={}, batch=batch, strides=[stride])


def kd_pair(method: str, teacher: str = "yolo26s.yaml", student: str = "yolo26n.yaml", imgsz: int = 64):
    """A random-weight teacher/student KDModel in train mode and one training forward: (model, terms, inputs)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.bench.cost import batch_of
    from yolo_kd.model import KDModel

    torch.manual_seed(0)
    s, t = DetectionModel(student, nc=3, verbose=False), DetectionModel(teacher, nc=3, verbose=False)
    s.args = t.args = get_cfg(overrides={"imgsz": imgsz})
    model = KDModel(t, s, method=method).train()
    _, _, terms, x = model.kd_terms(batch_of(2, imgsz, 3, "cpu"))
    return model, terms, x
