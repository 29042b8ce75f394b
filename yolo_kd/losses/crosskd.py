"""CrossKD: cross-head knowledge distillation for dense detectors (Wang et al., CVPR 2024, arXiv 2306.11369)."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn

from yolo_kd.errors import KDError
from yolo_kd.losses.base import DistillLoss, KDInputs
from yolo_kd.losses.functional import binary_distill, decode_boxes, giou_loss, rank_share
from yolo_kd.losses.layers import Conv1x1
from yolo_kd.losses.registry import register


@contextmanager
def frozen_bn_stats(module: nn.Module):
    """Run ``module`` with batch statistics but without updating its BatchNorm running statistics (momentum 0)."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, v in zip(bns, saved):
            m.momentum = v


def pre_activation(block: nn.Module, x: Tensor) -> tuple[Tensor, nn.Module]:
    """A head block's output before its last activation, and that activation (Ultralytics ``Conv``: act(bn(conv)))."""
    if isinstance(block, nn.Sequential):
        for m in block[:-1]:
            x = m(x)
        return pre_activation(block[-1], x)
    return block.bn(block.conv(x)), block.act


def align_scale(s: Tensor, t: Tensor, eps: float = 1e-6) -> Tensor:
    """CrossKD's ``align_scale``: each channel of ``s`` standardised over (N, H, W), then given ``t``'s mean and std.

    Standard deviations are unbiased (``Tensor.std``), as in the official code; ``t`` carries no gradient.
    """
    dims = (0, 2, 3)
    s_mean, s_std = s.mean(dims, keepdim=True), s.std(dims, keepdim=True)
    t_mean, t_std = t.mean(dims, keepdim=True), t.std(dims, keepdim=True)
    return (s - s_mean) / (s_std + eps) * t_std + t_mean


def conv_width(block: nn.Module, first: bool) -> int:
    """Input width of a head block's first conv (``first``) or output width of its last conv."""
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    return convs[0].in_channels if first else convs[-1].out_channels


@register("crosskd")
class CrossKD(DistillLoss):
    """Cross-head KD (CrossKD, Wang et al., CVPR 2024, arXiv 2306.11369).

    The student's head features after its first ``layer`` blocks (of the 3 in each Ultralytics Detect branch: two
    conv blocks and the prediction conv) go through the frozen teacher's remaining blocks of the same branch; these
    cross-head predictions mimic the teacher's own predictions, so the student's head keeps learning from the ground
    truth alone (no conflict between GT and teacher targets on the same outputs). Per level, both branches:

    - cls (cv3): ``sum_{a,c} BCE(z^X_ac, p^T_ac) |p^T_ac - sigma(z^X_ac)| / N_pos`` (the sigmoid-head, QFL-style
      soft-target loss the paper uses for GFL; N_pos = the student's task-aligned positives, global under DDP);
    - box (cv2): ``sum_a w_a (1 - GIoU(b^X_a, b^T_a)) / sum_a w_a`` on decoded boxes, ``w_a = max_c p^T_ac``.

    Paper facts kept: crossing inside the head, teacher head frozen (its BN statistics untouched: it runs in eval),
    gradient reaching the student (and adapter) through the teacher's layers. Ours: Ultralytics' branches have 2 hidden
    blocks where GFL has 4; ``layer=1`` (default) keeps the teacher's last hidden block and prediction conv, as the
    paper's best crossing keeps the teacher's last stacked conv; ``layer=2`` crosses at the prediction conv. Where
    widths differ a trained 1x1 conv adapter maps student to teacher width. The box term is GIoU on decoded boxes for
    every head (the paper uses GIoU or LD on DFL heads), so YOLO26 (reg_max 1) works; term weights 1 and 1 times
    ``weight`` = 20 (ours): at 1 the terms are inert under Ultralytics' detection loss (0.01-0.09x its gradient on the
    student's backbone and neck, ``yolo-kd inspect`` on the cpu-small teacher, fresh and trained yolov8n); x20 brings
    them to ~1x late in training. Set by that gradient share, not tuned on mAP. A student that starts from weights
    (``student=*.pt``) gets ``weight=3`` unless one is given (``yolo_kd.cfg.PRETRAINED_ARGS``): on real photos a
    pretrained student's cls term is 6.5x the detection gradient at 20, and 3 won on fresh seeds (R8). The student's
    blocks are re-run on its neck maps with batch statistics but frozen running statistics, so BatchNorm statistics
    update once per step as without KD; the teacher's own predictions are taken from its forward, not recomputed. When
    both are end-to-end (YOLO26), the one-to-one branches are crossed the same way and their terms added (ours: same
    N_pos; the student's neck maps are detached for that branch, as Ultralytics' own one-to-one head does). Cross and
    teacher predictions stay in the teacher's classes, so any class set works.
    """

    requires = frozenset({"box_branch", "detect_modules"})
    names = ("crosskd_cls", "crosskd_box")

    @classmethod
    def check_args(cls, args: dict) -> None:
        """``layer`` is 1 or 2, ``cls_norm`` pos or score."""
        super().check_args(args)
        if args["layer"] not in {1, 2}:
            raise KDError(f"crosskd_layer={args['layer']} must be 1 or 2 (hidden blocks of the student used before "
                          "crossing)")  # fmt: skip
        if args["cls_norm"] not in {"pos", "score"}:
            raise KDError(f"crosskd_cls_norm={args['cls_norm']!r} must be pos (the paper's N_pos) or score (sum of "
                          "w_a)")  # fmt: skip

    def __init__(
        self,
        s_channels: list[int],
        t_channels: list[int],
        *,
        weight: float = 20.0,
        cls_weight: float = 1.0,
        box_weight: float = 1.0,
        layer: int = 1,
        align: bool = False,
        cls_norm: str = "pos",
    ) -> None:
        """Store options; adapters are built by ``bind`` once the heads are known."""
        super().__init__(s_channels, t_channels)
        self.cls_weight, self.box_weight, self.layer = weight * cls_weight, weight * box_weight, layer
        self.align = bool(align)
        self.cls_norm = cls_norm
        self.adapt = nn.ModuleDict()

    def bind(self, s_detect: nn.Module, t_detect: nn.Module) -> None:
        """Build a 1x1 adapter per level and branch where the crossing widths differ (identity otherwise)."""
        k = self.layer
        o2o = all(getattr(d, "one2one_cv2", None) is not None for d in (s_detect, t_detect))
        for name in ("cv2", "cv3", *(("one2one_cv2", "one2one_cv3") if o2o else ())):
            s_br, t_br = getattr(s_detect, name), getattr(t_detect, name)
            self.adapt[name] = nn.ModuleList(
                nn.Identity() if (cs := conv_width(s[k - 1], False)) == (ct := conv_width(t[k], True))
                else Conv1x1(cs, ct)
                for s, t in zip(s_br, t_br)
            )  # fmt: skip

    def cross(self, x: KDInputs, name: str, i: int) -> Tensor:
        """Cross-head output of branch ``name`` on level ``i``, (B, K, H*W)."""
        k = self.layer
        s_block, t_block = getattr(x.s_detect, name)[i], getattr(x.teacher.detect, name)[i]
        feats = x.s_feats[i].detach() if name.startswith("one2one") else x.s_feats[i]  # as Ultralytics' o2o branch
        if not self.align:
            with frozen_bn_stats(s_block):
                mid = s_block[:k](feats)
            return t_block[k:](self.adapt[name][i](mid.float())).flatten(2)
        with frozen_bn_stats(s_block):
            pre, _ = pre_activation(s_block[k - 1], s_block[: k - 1](feats))
        with torch.no_grad():
            t_in = x.t_feats[i].to(next(t_block.parameters()).dtype)
            t_pre, act = pre_activation(t_block[k - 1], t_block[: k - 1](t_in))
        mid = act(align_scale(self.adapt[name][i](pre.float()), t_pre.float()))
        return t_block[k:](mid).flatten(2)

    @staticmethod
    def teacher(x: KDInputs, name: str) -> Tensor:
        """The teacher's own branch output over all levels, (B, K, A), in its own classes, from its forward."""
        head = x.t_head_o2o if name.startswith("one2one") else x.t_head
        return head["boxes" if name.endswith("cv2") else "raw_scores"].detach().float()

    def forward(self, x: KDInputs) -> dict[str, Tensor]:
        """Cross-head cls and box mimicking, summed over levels."""
        if x.s_detect is None or x.teacher.detect is None:
            raise KDError("crosskd needs the student's and the teacher's Detect heads (run it through KDModel)")
        n_pos = rank_share(x.assign("student")[0].sum().float()).clamp(min=1.0)
        loss_cls, loss_box = self.branch(x, "", n_pos)
        if "one2one_cv2" in self.adapt and x.t_head_o2o is not None:  # YOLO26 pair: the NMS-free branch as well
            c2, b2 = self.branch(x, "one2one_", n_pos)
            loss_cls, loss_box = loss_cls + c2, loss_box + b2
        return {"crosskd_cls": self.cls_weight * loss_cls, "crosskd_box": self.box_weight * loss_box}

    def branch(self, x: KDInputs, prefix: str, n_pos: Tensor) -> tuple[Tensor, Tensor]:
        """(cls, box) cross-head terms of one head branch (``''`` one-to-many, ``'one2one_'``), unweighted."""
        from ultralytics.utils.tal import make_anchors

        n = len(x.s_feats)
        z_x = torch.cat([self.cross(x, f"{prefix}cv3", i) for i in range(n)], -1).float()
        z_t = self.teacher(x, f"{prefix}cv3")
        anchors, stride = make_anchors(x.t_feats, x.teacher.detect.stride, 0.5)
        b_x = decode_boxes(torch.cat([self.cross(x, f"{prefix}cv2", i) for i in range(n)], -1), anchors, stride)
        b_t = decode_boxes(self.teacher(x, f"{prefix}cv2"), anchors, stride)
        w = z_t.sigmoid().amax(1)  # (B, A), no grad
        if self.cls_norm == "score":  # a teacher-score-weighted mean over anchors, as the box term
            per_anchor = binary_distill(z_x, z_t).sum(1)  # (B, A)
            loss_cls = (w * per_anchor).sum() / rank_share(w.sum()).clamp(min=1e-9)
        else:
            loss_cls = binary_distill(z_x, z_t).sum() / n_pos
        return loss_cls, (w * giou_loss(b_x, b_t)).sum() / rank_share(w.sum()).clamp(min=1e-9)
