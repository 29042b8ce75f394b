"""kd_balance=auto: the update rule, the trainer path (results.csv columns) and resume with the same multipliers."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from yolo_kd.balance import BOUNDS, Balancer


def test_update_moves_toward_target_share_smoothed_and_bounded():
    """log m <- 0.7 log m + 0.3 log(share * |g_det| / |g_term|), clamped to BOUNDS; no gradient keeps m."""
    b = Balancer(("a", "b", "c"), share={"a": 1.0, "b": 2.0}, every=1)
    b.update(10.0, {"a": 5.0, "b": 1e9, "c": 0.0})
    m = b.multipliers()
    assert m["a"] == pytest.approx(math.exp(0.3 * math.log(2.0)))
    assert m["b"] == pytest.approx(max(math.exp(0.3 * math.log(2.0 * 10 / 1e9)), BOUNDS[0]))  # clamped
    assert m["c"] == 1.0
    for _ in range(100):
        b.update(10.0, {"a": 5.0, "b": 1e9})
    assert b.multipliers()["a"] == pytest.approx(2.0, rel=1e-3) and b.multipliers()["b"] == pytest.approx(BOUNDS[0])


def test_measure_uses_gradient_norms_on_given_params():
    """Norms are taken on the parameters given (x batch size for KD terms, as they enter the loss)."""
    p = torch.tensor([3.0, 4.0], requires_grad=True)
    det = (p * 2).sum()  # |g| = 2 * sqrt(2)
    b = Balancer(("k",), share=1.0, every=1, smooth=1.0)
    b.measure(det.view(1), {"k": (p**2).sum() / 2}, [p], bs=1)  # |g| = |p| = 5
    assert b.multipliers()["k"] == pytest.approx(2 * math.sqrt(2) / 5, rel=1e-5)
    assert b.apply({"k": torch.tensor(1.0), "other": torch.tensor(1.0)})["other"] == 1.0


def test_trainer_logs_multipliers_and_resume_continues_them(train_args):
    """A kd_balance=auto run writes kd_mult/<term> columns; a resumed run starts from the checkpoint's multipliers."""
    from yolo_kd.trainer import KDTrainer

    class Stop(Exception):
        pass

    args = {**train_args, "method": "mimic+kd", "kd_balance": "auto", "kd_balance_every": 1, "epochs": 2,
            "name": "bal"}  # fmt: skip
    tr = KDTrainer(overrides=args)
    tr.add_callback("on_model_save", lambda t: (_ for _ in ()).throw(Stop()))
    with pytest.raises(Stop):
        tr.train()
    rows = list(csv.DictReader(open(tr.csv)))
    cols = {k.strip() for k in rows[0]}
    assert {"kd_mult/mimic", "kd_mult/kd"} <= cols
    saved = torch.load(tr.last, weights_only=False)["ema"].yolo_kd["state"]["balancer.log_mult"].float()  # stock file
    assert saved.abs().sum() > 0  # the multipliers moved
    seen = {}
    resumed = KDTrainer(overrides={"resume": str(tr.last)})
    resumed.add_callback("on_train_start", lambda t: seen.update(m=t.model.balancer.log_mult.clone()))
    resumed.train()
    assert torch.allclose(seen["m"].float(), saved, atol=1e-3)


def test_bad_balance_settings_are_one_line(train_args):
    """kd_balance and kd_share are checked before any run directory exists."""
    from yolo_kd.errors import KDError
    from yolo_kd.trainer import KDTrainer

    with pytest.raises(KDError, match="kd_balance='on'"):
        KDTrainer(overrides={**train_args, "kd_balance": "on"})
    with pytest.raises(KDError, match="kd_share"):
        KDTrainer(overrides={**train_args, "kd_share": -1})
