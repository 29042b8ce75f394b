"""GKD as the paper's loss (Lan & Tian, WACV 2024, arXiv 2303.04240): Grad-CAM map alignment, for reproduction."""

from __future__ import annotations

from yolo_kd.losses.gkd import GKD
from yolo_kd.losses.registry import register


@register("gkdpaper")
class GKDPaper(GKD):
    """GKD as the paper's loss: ``beta * mean |M_T - M_S|`` of Grad-CAM maps (Lan & Tian, WACV 2024), for reproduction.

    Same class as ``gkd`` with the paper's defaults: no feature imitation (``weight`` 0), the pooled Grad-CAM map,
    ``cam_weight`` 0.6 (released one-stage beta 0.1 x ~6 for Ultralytics' per-image loss scale). Differences from
    the released code: the student's map is differentiable (there it is a NumPy constant, so the term trains
    nothing), gradients come from the augmented batch, and the student is not initialised from the teacher.
    """

    prefix = "gkdpaper"

    def __init__(
        self, s_channels: list[int], t_channels: list[int], *, cam_weight: float = 0.6, map: str = "pooled"
    ) -> None:
        """The paper's term alone (imitation weight 0); ``gkd`` with ``gkd_cam_weight=`` combines both."""
        super().__init__(s_channels, t_channels, weight=0.0, cam_weight=cam_weight, map=map)
