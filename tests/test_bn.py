"""``yolo-kd fix-bn``: BatchNorm re-estimation for checkpoints whose BatchNorm was folded to identity-plus-bias."""

from __future__ import annotations

import torch


def _folded(seed: int = 0):
    """A yolov8n whose BatchNorms are identity-plus-bias, as in weights rebuilt from fused exports."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    m = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    with torch.no_grad():
        for b in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)):
            b.running_mean.zero_()
            b.running_var.fill_(1 - b.eps)
            b.weight.fill_(1.0)
            b.bias.normal_(0, 0.1)
    return m


def test_recalibrate_keeps_eval_output_and_fixes_train_mode():
    """Eval outputs are unchanged; train-mode (batch-statistics) outputs now equal the eval ones on these images,
    while before they differed by far more - the collapse a fine-tune of such a checkpoint suffers."""
    from yolo_kd.batchnorm import is_identity_bn
    from yolo_kd.tools.bn import recalibrate

    m = _folded()
    ims = torch.rand(8, 3, 64, 64).numpy()
    x = torch.from_numpy(ims)

    def outputs(mode: str):
        for b in (y for y in m.modules() if isinstance(y, torch.nn.BatchNorm2d)):
            b.momentum = 0.0  # a train-mode forward must not move the statistics under test
        with torch.no_grad():
            out = m.train()(x) if mode == "train" else m.eval()(x)[1]
        return torch.cat([f.flatten() for f in out["feats"]])

    ev, tr = outputs("eval"), outputs("train")
    assert all(is_identity_bn(b) for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d))
    assert recalibrate(m, ims, batch=4) == 57
    ev2, tr2 = outputs("eval"), outputs("train")
    assert torch.allclose(ev2, ev, atol=1e-3 * ev.abs().max())
    assert (tr2 - ev2).abs().max() < 1e-3 * ev.abs().max() < (tr - ev).abs().max()
    assert recalibrate(m, ims) == 0  # no identity BatchNorm left


def test_fix_bn_cli_writes_a_stock_checkpoint(tiny_data, tmp_path, make_ckpt):
    """The CLI writes a checkpoint stock YOLO() loads; missing data is a one-line error."""
    from ultralytics import YOLO

    from yolo_kd.cli import main

    src = make_ckpt(tmp_path / "w.pt", cfg="yolov8n.yaml")
    assert main(["fix-bn", f"model={src}", f"data={tiny_data}", "images=4", "imgsz=64", "all=True"]) == 0
    out = tmp_path / "w-bn.pt"
    assert out.exists() and YOLO(str(out)).model.model[-1].nc == 3
    assert main(["fix-bn", f"model={src}"]) == 2


def test_identity_bn_is_detected_when_training_starts(train_args, tmp_path, caplog):
    """A student .pt with identity BatchNorm gets a warning naming the fix-bn command; a normal model does not."""
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.batchnorm import identity_bn_warning
    from yolo_kd.trainer import KDTrainer

    assert identity_bn_warning(_folded(), "x.pt", "d") is not None
    assert identity_bn_warning(DetectionModel("yolov8n.yaml", nc=3, verbose=False), "x.pt", "d") is None
    trained = _folded()
    for b in (x for x in trained.modules() if isinstance(x, torch.nn.BatchNorm2d)):
        b.running_var.fill_(2.0)
    assert identity_bn_warning(trained, "x.pt", "d") is None
    path = tmp_path / "folded.pt"
    torch.save({"model": _folded().half(), "train_args": {}}, path)
    trainer = KDTrainer(overrides={**train_args, "student": str(path), "method": "mimic", "epochs": 1})
    trainer._setup_train()
    assert f"yolo-kd fix-bn model={path}" in caplog.text
