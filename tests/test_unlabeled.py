"""unlabeled=: the image pool, teacher pseudo-labels on the augmented batch, the split detection loss, end to end."""

from __future__ import annotations

import pytest
import torch

from yolo_kd.errors import KDError
from yolo_kd.pseudo import PseudoLabeler, part, split_loss, take, with_targets


def teacher_pred(nc: int = 3) -> torch.Tensor:
    """Decoded teacher output (B=3, 4 + nc, 4 anchors), xywh in pixels of a 64 x 32 (h x w) input."""
    p = torch.zeros(3, 4 + nc, 4)
    p[:, :4, 0] = torch.tensor([16.0, 8.0, 8.0, 4.0])  # box centred (16, 8), 8 wide, 4 high
    p[:, :4, 1] = torch.tensor([4.0, 40.0, 4.0, 8.0])
    p[:, :4, 2:] = torch.tensor([30.0, 60.0, 2.0, 2.0]).view(4, 1)
    p[:, 4 + 0, 0] = 0.9  # class 0, confident
    p[:, 4 + 2, 1] = 0.4  # class 2, below a 0.5 threshold, above 0.3
    return p


def test_pseudo_labels_are_teacher_boxes_after_thresholds():
    """Only the images after n_labeled get targets: normalised xywh, student ids, per-class thresholds, batch_idx."""
    out = PseudoLabeler(conf=0.5).label(teacher_pred(), 1, (64, 32), 3, None)
    assert out["batch_idx"].tolist() == [1.0, 2.0] and out["cls"].view(-1).tolist() == [0.0, 0.0]
    assert torch.allclose(out["bboxes"][0], torch.tensor([16 / 32, 8 / 64, 8 / 32, 4 / 64]))
    out = PseudoLabeler(conf=[0.5, 0.5, 0.3]).label(teacher_pred(), 2, (64, 32), 3, None)
    assert sorted(out["cls"].view(-1).tolist()) == [0.0, 2.0] and out["batch_idx"].tolist() == [2.0, 2.0]


def test_pseudo_labels_follow_the_class_map():
    """Teacher class 0 is student class 1; teacher classes the student lacks are never pseudo-labeled."""
    student_to_teacher = torch.tensor([2, 0])  # student 0 = teacher 2, student 1 = teacher 0; teacher 1 unmapped
    p = teacher_pred(nc=3)
    p[:, 4 + 1, 2] = 0.95  # teacher class 1: no student class
    out = PseudoLabeler(conf=0.3).label(p, 0, (64, 32), 2, student_to_teacher)
    assert sorted(out["cls"].view(-1).tolist()) == [0.0] * 3 + [1.0] * 3


def criterion_and_preds(bs: int):
    """A student's Ultralytics criterion (via DetectionModel.loss) and its training predictions for ``bs`` images."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    m = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    m.args = get_cfg(overrides={"imgsz": 64})
    img = torch.rand(bs, 3, 64, 64)
    return m.loss, m(img), img


def labeled(bs: int) -> dict:
    """A batch with one ground-truth box on each of the first two images."""
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.3], [0.3, 0.4, 0.2, 0.2]])
    return {"img": torch.rand(bs, 3, 64, 64), "cls": torch.tensor([[0.0], [1.0]]), "bboxes": boxes,
            "batch_idx": torch.tensor([0.0, 1.0])}  # fmt: skip


def test_split_loss_is_labeled_plus_weighted_pseudo():
    """det = det(labeled images, ground truth) + w * det(unlabeled images, pseudo-labels only), items per image."""
    crit, preds, img = criterion_and_preds(3)
    batch = {**labeled(3), "img": img}
    pseudo = {
        "cls": torch.tensor([[2.0]]),
        "bboxes": torch.tensor([[0.6, 0.6, 0.3, 0.3]]),
        "batch_idx": torch.tensor([2.0]),
    }
    full = with_targets(batch, pseudo)
    det, items, share = split_loss(crit, full, preds, 2, 0.5)
    det_u, _ = crit(part(full, 2, 3), take(preds, slice(2, 3), 3))
    det_l, _ = crit(part(full, 0, 2), take(preds, slice(0, 2), 3))
    assert torch.allclose(det, det_l + 0.5 * det_u)
    assert 0 < share < 1 and abs(share - float(0.5 * det_u.sum().detach() / det.sum().detach())) < 1e-6
    assert torch.allclose(torch.stack(list(items.values())), det.detach() / 3)


def test_unlabeled_image_is_never_a_negative():
    """Without pseudo-labels on it, an unlabeled image adds nothing at pseudo_weight=0, and the KDModel paths that
    run no teacher (validation, no pseudo-labeler) drop it instead of treating it as background."""
    crit, preds, img = criterion_and_preds(3)
    batch = {**labeled(3), "img": img}
    det, _, share = split_loss(crit, batch, preds, 2, 0.0)
    det_l, _ = crit(part(batch, 0, 2), take(preds, slice(0, 2), 3))
    assert torch.allclose(det, det_l) and share == 0.0
    as_background, _ = crit(batch, preds)  # what Ultralytics would do with an image without a label file
    assert not torch.allclose(as_background, det_l)


def test_kdmodel_without_pseudo_labeler_drops_unlabeled_images():
    """The no-teacher path of KDModel.loss scores only the labeled images of a merged batch."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.model import KDModel

    torch.manual_seed(0)
    t, s = DetectionModel("yolov8s.yaml", nc=3, verbose=False), DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    s.args = t.args = get_cfg(overrides={"imgsz": 64})
    m = KDModel(t, s, method="mimic").eval()
    batch = {**labeled(3), "n_labeled": 2}
    full, _ = m.loss(batch)
    only, _ = m.loss(part(batch, 0, 2))
    assert torch.allclose(full, only)


def test_pool_errors(tmp_path, tiny_data):
    """Missing, empty, unreadable, a list naming missing files, and labeled train images: one line each."""
    import yaml

    from yolo_kd.unlabeled import find_images, resolve_pool

    with pytest.raises(KDError, match="does not exist"):
        find_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KDError, match="holds no images"):
        find_images(tmp_path / "empty")
    (tmp_path / "list.txt").write_text("a.jpg\n")
    with pytest.raises(KDError, match="missing file.*'./x' next to the list"):
        find_images(tmp_path / "list.txt")
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "list.txt").write_text("./a.jpg\n")  # Ultralytics' rule for train: lists, the same here
    assert find_images(tmp_path / "list.txt") == [str(tmp_path / "a.jpg")]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"not an image")
    data = yaml.safe_load(tiny_data.read_text())
    data["train"] = str(tiny_data.parent / data["train"]) if not data.get("path") else data["train"]
    with pytest.raises(KDError, match="cannot be read"):
        resolve_pool(str(bad), {**data, "nc": 3})
    train_imgs = tiny_data.parent / "images" / "train"
    with pytest.raises(KDError, match="also in the labeled train split"):
        resolve_pool(str(train_imgs), {**data, "path": str(tiny_data.parent), "train": "images/train", "nc": 3})


def test_train_with_unlabeled_images_end_to_end(train_args, tmp_path):
    """A real epoch with an unlabeled folder: pseudo columns logged, a stock-loadable student, a bad folder refused
    before any run directory exists."""
    from ultralytics import YOLO

    from yolo_kd.data.synthetic import make_synthetic_kitti
    from yolo_kd.trainer import KDTrainer

    with pytest.raises(KDError, match="does not exist"):
        KDTrainer(overrides={**train_args, "unlabeled": str(tmp_path / "nope"), "name": "bad"})
    assert not (tmp_path / "bad").exists()
    pool = make_synthetic_kitti(tmp_path / "pool", n=6, seed=7) / "image_2"
    tr = KDTrainer(overrides={**train_args, "method": "crosskd", "unlabeled": str(pool), "pseudo_conf": 0.001})
    tr.train()
    assert tr.unlabeled is not None and len(tr.unlabeled.dataset) == 6
    head = (tr.save_dir / "results.csv").read_text().splitlines()[0]
    assert "train/pseudo" in head and "train/pl_share" in head
    assert tr.tloss["pseudo"] > 0 and 0 < float(tr.tloss["pl_share"]) <= 1  # the teacher's boxes reached the loss
    r = YOLO(str(tr.best)).val(data=train_args["data"], imgsz=64, batch=4, plots=False, verbose=False)
    assert r.box.map >= 0


def test_resume_keeps_the_unlabeled_stream(train_args, tmp_path):
    """A run stopped after its first epoch resumes with the same pool and pseudo-label settings."""
    from yolo_kd.data.synthetic import make_synthetic_kitti
    from yolo_kd.trainer import KDTrainer

    class Stop(Exception):
        pass

    pool = make_synthetic_kitti(tmp_path / "pool", n=4, seed=3) / "image_2"
    args = {**train_args, "method": "mimic", "unlabeled": str(pool), "pseudo_conf": 0.001, "pseudo_weight": 0.5,
            "epochs": 2, "name": "u"}  # fmt: skip
    tr = KDTrainer(overrides=args)
    tr.add_callback("on_model_save", lambda t: (_ for _ in ()).throw(Stop()))
    with pytest.raises(Stop):
        tr.train()
    seen = {}
    resumed = KDTrainer(overrides={"resume": str(tr.last)})
    resumed.add_callback("on_train_start", lambda t: seen.update(n=len(t.unlabeled.dataset), w=t.model.pseudo.weight))
    resumed.train()
    assert seen == {"n": 4, "w": 0.5} and resumed.kd_spec.name == resumed.args.method == "mimic"
    rows = (resumed.save_dir / "results.csv").read_text().splitlines()
    assert len(rows) == 3 and "train/pseudo" in rows[0]


def _shard_worker(rank: int, port: int, files: list[str], out: str) -> None:
    """One DDP rank: the file names of one pass of its unlabeled stream."""
    import json
    import os

    from ultralytics.cfg import get_cfg

    from yolo_kd.unlabeled import UnlabeledStream

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    # Ultralytics' trainer seeds each rank with seed + 1 + RANK and its loader subtracts RANK + 1 again, so every rank
    # shuffles with the same seed; RANK is -1 in these bare processes, hence one seed for both here
    torch.manual_seed(0)
    args = get_cfg(overrides={"imgsz": 64, "workers": 0, "mosaic": 0.0})
    s = UnlabeledStream(files, args, 2, 32, {"nc": 3, "names": {0: "a", 1: "b", 2: "c"}, "channels": 3}, rank=rank)
    seen = [f for _ in range(len(s.loader)) for f in s.next()["im_file"]]
    with open(f"{out}.{rank}", "w") as f:
        json.dump(seen, f)
    torch.distributed.destroy_process_group()


def test_ddp_ranks_read_disjoint_shards_of_the_pool(tmp_path):
    """Under 2-process DDP each rank reads its own half of the unlabeled pool; together they cover it once."""
    import json
    import socket

    from yolo_kd.data.synthetic import make_synthetic_kitti
    from yolo_kd.unlabeled import find_images

    if not torch.distributed.is_gloo_available():
        pytest.skip("torch built without gloo")
    files = find_images(make_synthetic_kitti(tmp_path / "pool", n=8, seed=5) / "image_2")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = str(tmp_path / "seen")
    torch.multiprocessing.spawn(_shard_worker, args=(port, files, out), nprocs=2, join=True)
    a, b = (json.load(open(f"{out}.{r}")) for r in (0, 1))
    assert len(a) == len(b) == 4 and not set(a) & set(b) and sorted(a + b) == sorted(files)
