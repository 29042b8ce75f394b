"""DDP on CPU (gloo, 2 processes): KDModel wrapped the way Ultralytics' trainer wraps it gives the same KD loss and
the same student/adapter gradients as one process on the whole batch, for every registered method.

BatchNorm is put in eval mode in both runs: Ultralytics' DDP uses per-GPU BatchNorm statistics (no SyncBatchNorm),
which is a property of the student, not of the distillation, and would hide the KD math this test is about.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch

from yolo_kd.losses import LOSSES

WORLD, B, IMGSZ = 2, 4, 64


def _models(method: str):
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.model import KDModel

    torch.manual_seed(0)
    t, s = DetectionModel("yolov8s.yaml", nc=3, verbose=False), DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    s.args = t.args = get_cfg(overrides={"imgsz": IMGSZ})
    for model in (t, s):  # random nets in eval mode output ~1e-7 everywhere: set BatchNorm statistics from the batch
        for seq in model.model[-1].cv3:
            torch.nn.init.zeros_(seq[-1].bias)  # and drop the -11 score prior so scores and KL terms are not ~0
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.momentum = None
        with torch.no_grad():
            model.train()(_batch()["img"])
    m = KDModel(t, s, method=method).train()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.eval()
    for p in m.teacher_model.parameters():  # what the trainer's freeze list does to "teacher_model."
        p.requires_grad = False
    return m


def _batch() -> dict:
    """A fixed global batch, image i with i + 1 large boxes: the ranks get 3 and 7 boxes, so any per-rank count in
    a normaliser shows (and the task-aligned assigner finds positives)."""
    g = torch.Generator().manual_seed(0)
    idx = torch.arange(B).repeat_interleave(torch.arange(1, B + 1)).float()
    xy, wh = torch.rand(len(idx), 2, generator=g) * 0.4 + 0.3, torch.rand(len(idx), 2, generator=g) * 0.3 + 0.3
    img, cls = torch.rand(B, 3, IMGSZ, IMGSZ, generator=g), torch.randint(0, 3, (len(idx), 1), generator=g).float()
    return {"img": img, "batch_idx": idx, "cls": cls, "bboxes": torch.cat([xy, wh], 1)}


def _half(batch: dict, r: int) -> dict:
    """Images r*B/W .. (r+1)*B/W of the global batch with their labels, re-indexed."""
    n = B // WORLD
    keep = (batch["batch_idx"] >= r * n) & (batch["batch_idx"] < (r + 1) * n)
    return {"img": batch["img"][r * n : (r + 1) * n], "batch_idx": batch["batch_idx"][keep] - r * n,
            "cls": batch["cls"][keep], "bboxes": batch["bboxes"][keep]}  # fmt: skip


def _kd_step(model, batch: dict, world: int) -> float:
    """The trainer's step on the KD part only: loss.sum() * world_size, detection terms kept in the graph at 0."""
    loss, _ = model(batch)
    (loss[-1] * world + 0 * loss[:-1].sum()).backward()
    return loss[-1].item() / batch["img"].shape[0]  # the weighted KD sum of this batch (loss is x batch size)


def _grads(model) -> dict[str, torch.Tensor]:
    return {k.removeprefix("module."): p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def _worker(rank: int, port: int, methods: list[str], out: str) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    batch, res, refs = _batch(), {}, {}
    for method in methods if rank == 0 else []:  # single-process reference first: no process group yet
        ref = _models(method)
        refs[method] = _kd_step(ref, batch, 1), _grads(ref)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD)
    for method in methods:
        ddp = DDP(_models(method), find_unused_parameters=True, broadcast_buffers=False)  # as BaseTrainer does
        kd = torch.tensor(_kd_step(ddp, _half(batch, rank), WORLD))
        torch.distributed.all_reduce(kd)
        if rank == 0:
            ref_kd, rg = refs[method]
            g = _grads(ddp)
            floor = 1e-4 * max(v.abs().max() for v in rg.values())  # e.g. PKD's adapter biases: 0 in theory, ~1e-7
            err = max(((g[k] - rg[k]).abs().max() / rg[k].abs().max().clamp_min(floor)).item() for k in rg)
            adapters = sum(k.startswith("kd_loss.") for k in g)
            teacher = any(k.startswith("teacher_model.") for k in g)
            res[method] = {"kd": kd.item() / WORLD, "ref_kd": ref_kd, "rel_err": err, "same_params": set(g) == set(rg),
                           "teacher_grads": teacher, "adapters": adapters}  # fmt: skip
    if rank == 0:
        Path(out).write_text(json.dumps(res))
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


METHODS = [*(k for k in sorted(LOSSES) if not LOSSES[k].task), "gkd+bmfi"]  # maskkd, kptkd: test_tasks.py


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory) -> dict:
    """Run every method once under a 2-process gloo DDP and once in a single process (rank 0)."""
    if not torch.distributed.is_gloo_available():
        pytest.skip("torch built without gloo")
    out = tmp_path_factory.mktemp("ddp") / "res.json"
    torch.multiprocessing.spawn(_worker, args=(_free_port(), METHODS, str(out)), nprocs=WORLD, join=True)
    return json.loads(out.read_text())


@pytest.mark.train  # two spawned processes per method (~45 s for the module)
@pytest.mark.parametrize("method", METHODS)
def test_ddp_matches_single_process(ddp_results, method):
    """Mean of the per-rank KD losses equals the global one, and the all-reduced gradients of the student and the
    method's modules equal the single-process gradients; the teacher gets none."""
    r = ddp_results[method]
    assert r["same_params"] and not r["teacher_grads"]
    assert r["adapters"] > 0 or method in {"kd", "ld", "rm", "bckd", "gkdpaper"}
    if method == "mgd":  # random masks: each rank draws its own, so only equal in expectation
        assert r["kd"] == pytest.approx(r["ref_kd"], rel=0.2)
        return
    assert r["kd"] == pytest.approx(r["ref_kd"], rel=1e-4, abs=1e-7)
    assert r["rel_err"] < 1e-3, r
