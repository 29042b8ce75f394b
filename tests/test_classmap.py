"""Teachers with other classes: logits and labels mapped by class name."""

from __future__ import annotations

import pytest
import torch

from yolo_kd.classmap import class_map, describe_map
from yolo_kd.errors import KDError


def test_class_map_by_name():
    """Case/separator-insensitive names; classes the teacher lacks map to -1; no match at all is an error."""
    teacher = {0: "person", 1: "bicycle", 2: "car", 3: "traffic light"}
    assert class_map(teacher, ["Car", "Traffic_Light", "tram"]) == [2, 3, -1]
    assert "2/3" in describe_map([2, 3, -1], ["Car", "Traffic_Light", "tram"]) and "['tram']" in describe_map(
        [2, 3, -1], ["Car", "Traffic_Light", "tram"]
    )
    with pytest.raises(KDError, match="no student class name matches"):
        class_map(teacher, {0: "Pedestrian"})


def models(t_names: list[str], s_names: list[str], method: str):
    """KDModel of random yolov8n teacher/student with the given class names."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.model import KDModel

    t = DetectionModel("yolov8n.yaml", nc=len(t_names), verbose=False)
    s = DetectionModel("yolov8n.yaml", nc=len(s_names), verbose=False)
    t.names, s.names = dict(enumerate(t_names)), dict(enumerate(s_names))
    s.args = t.args = get_cfg(overrides={"imgsz": 64})
    return KDModel(t, s, method=method).train()


def test_teacher_scores_and_labels_are_mapped():
    """Student class k reads teacher class map[k]; unmatched classes copy the student's logits (zero KD gradient);
    the teacher's own loss sees labels in teacher ids, unmatched ones dropped."""
    from yolo_kd.classmap import map_batch, map_scores

    m = models(["dog", "car", "person", "bus", "cat"], ["person", "car", "tram"], "kd")
    assert m.class_map.tolist() == [2, 1, -1]
    t = torch.arange(5.0).view(1, 5, 1).expand(2, 5, 4)
    s = torch.full((2, 3, 4), 7.0, requires_grad=True)
    mapped = map_scores(m.class_map, t, s)
    assert mapped[0, :, 0].tolist() == [2.0, 1.0, 7.0] and not mapped.requires_grad
    from yolo_kd.losses.functional import binary_kl

    binary_kl(s, mapped).sum().backward()
    assert s.grad[:, 2].abs().max() < 1e-6 and s.grad[:, :2].abs().min() > 1e-3
    batch = {"cls": torch.tensor([[0.0], [2.0], [1.0]]), "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
             "bboxes": torch.rand(3, 4)}  # fmt: skip
    tb = map_batch(m.class_map, batch)
    assert tb["cls"].view(-1).tolist() == [2.0, 1.0] and tb["batch_idx"].tolist() == [0.0, 1.0]


def test_teacher_task_loss_maps_labels_unless_they_are_teacher_ids():
    """Student labels are mapped to teacher ids for the teacher's loss; teacher pseudo-labels are used as they are."""
    m = models(["dog", "car", "person", "bus", "cat"], ["person", "car", "tram"], "gkd")
    feats = [torch.randn(1, c, 64 // s, 64 // s) for c, s in zip((64, 128, 256), (8, 16, 32))]
    box = {
        "batch_idx": torch.zeros(1),
        "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]]),
        "img": torch.zeros(1, 3, 64, 64),
    }
    as_person = m.teacher_task_loss(feats, {**box, "cls": torch.tensor([[2.0]])}, teacher_classes=True)
    as_dog = m.teacher_task_loss(feats, {**box, "cls": torch.tensor([[0.0]])}, teacher_classes=True)
    student_person = m.teacher_task_loss(feats, {**box, "cls": torch.tensor([[0.0]])})  # student 0 = teacher 2
    assert torch.allclose(student_person, as_person) and not torch.allclose(as_dog, as_person)


def test_feature_methods_need_no_shared_class_names():
    """An unrelated teacher (no shared name, other class count) serves pure feature methods; methods that read its
    classes (head scores, its detection loss) are refused with one line, by the same plan as the pre-flight check."""
    from yolo_kd.classmap import plan

    t, s = ["a", "b", "c", "d", "e"], ["person", "car", "tram"]
    assert models(t, s, "mimic+bmfi").class_map is None
    for method in ("gkd", "kd"):
        with pytest.raises(KDError, match="no student class name matches"):
            models(t, s, method)
    assert plan(dict(enumerate(t)), dict(enumerate(s)), 5, 3, False, "mimic")[0] is None


def test_same_classes_need_no_map_and_unrelated_names_are_refused():
    """Equal names -> no map; equal counts but unrelated real names -> one error naming both lists (issue 37 item 4:
    it used to distil by index with a warning); placeholder names (unknown classes) -> index order."""
    assert models(["a", "b"], ["a", "b"], "kd").class_map is None
    with pytest.raises(KDError, match=r"no teacher class name matches.*teacher \['x', 'y'\], data \['a', 'b'\]"):
        models(["x", "y"], ["a", "b"], "kd")
    with pytest.raises(KDError, match="no teacher class name matches"):
        models(["x", "y"], ["a", "b"], "kd+ld")
    assert models(["class0", "class1"], ["a", "b"], "kd").class_map is None
    assert models(["0", "1"], ["a", "b"], "ld").class_map is None
    assert models(["x", "y"], ["a", "b"], "mimic").class_map is None  # features only: names do not matter
    with pytest.raises(KDError, match="no student class name matches"):
        models(["x", "y", "z"], ["a", "b"], "kd")


def test_coco_style_teacher_trains_a_subset_student(train_args, tmp_path):
    """A 5-class teacher whose names include the data's 3 trains kd+gkd through KDTrainer (COCO -> COCO-Traffic)."""
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.trainer import KDTrainer

    t = DetectionModel("yolov8s.yaml", nc=5, verbose=False)
    t.names = {0: "truck", 1: "cyclist", 2: "car", 3: "pedestrian", 4: "dog"}
    torch.save({"model": t.half(), "train_args": {}}, tmp_path / "t5.pt")
    trainer = KDTrainer(overrides={**train_args, "teacher": str(tmp_path / "t5.pt"), "method": "kd+gkd"})
    trainer.train()
    assert trainer.model.class_map.tolist() == [2, 3, 1]  # Car, Pedestrian, Cyclist by name
    assert {"kd", "gkd"} <= set(trainer.loss_names)


def test_trainer_refuses_unrelated_class_names_before_any_run_folder(train_args, tmp_path):
    """A head method with a 3-class teacher whose names share nothing with the data's 3 classes: one KDError naming
    both lists, and no run folder left behind."""
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.trainer import KDTrainer

    m = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    m.names = {0: "apple", 1: "pear", 2: "plum"}
    torch.save({"model": m.half(), "train_args": {}, "version": "8.4.190"}, tmp_path / "fruit.pt")
    project = tmp_path / "runs"
    with pytest.raises(KDError, match=r"teacher \['apple', 'pear', 'plum'\], data \['Car', 'Pedestrian', 'Cyclist'\]"):
        KDTrainer(overrides={**train_args, "teacher": str(tmp_path / "fruit.pt"), "method": "kd",
                             "project": str(project)}).train()  # fmt: skip
    assert not project.exists() or not any(project.iterdir())
