"""KITTI conversion on hand-made fixture files, and the synthetic scene generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from yolo_kd.data.kitti import convert_kitti, parse_label
from yolo_kd.data.synthetic import make_synthetic_kitti
from yolo_kd.errors import KDError

TAIL = "1.50 1.60 3.90 0.00 1.60 20.00 0.00"


def kitti_fixture(root, labels: dict[str, str], size=(200, 100)):
    """Write images (PNG) and label_2 files under root/training."""
    (root / "training" / "image_2").mkdir(parents=True)
    (root / "training" / "label_2").mkdir(parents=True)
    for stem, text in labels.items():
        Image.new("RGB", size).save(root / "training" / "image_2" / f"{stem}.png")
        if text is not None:
            (root / "training" / "label_2" / f"{stem}.txt").write_text(text)
    return root


def read_labels(dst):
    """All YOLO label lines by file stem, over both splits."""
    return {p.stem: p.read_text().splitlines() for p in dst.glob("labels/*/*.txt")}


def test_convert_dontcare_empty_and_border(tmp_path):
    """DontCare dropped, empty file -> empty label, border-crossing box clipped and normalised by the real size."""
    src = kitti_fixture(
        tmp_path / "kitti",
        {
            "000000": f"Car 0.00 0 0.00 -20.00 10.00 60.00 50.00 {TAIL}\nDontCare -1 -1 -10 5 5 20 20 {TAIL}\n",
            "000001": "",
            "000002": f"Pedestrian 0.00 0 0.00 150.00 20.00 230.00 120.00 {TAIL}\nVan 0 0 0 0 0 10 10 {TAIL}\n",
            "000003": None,  # no label file at all
        },
    )
    data = convert_kitti(src, tmp_path / "out", val_fraction=0.25, seed=0)
    labels = read_labels(tmp_path / "out")
    assert labels["000000"] == ["0 0.150000 0.300000 0.300000 0.400000"]  # x clipped to 0..60 of 200, y 10..50 of 100
    assert labels["000001"] == [] and labels["000003"] == []
    assert labels["000002"] == ["1 0.875000 0.600000 0.250000 0.800000"]  # clipped to 150..200, 20..100; Van dropped
    cfg = yaml.safe_load(data.read_text())
    assert cfg["names"] == {0: "Car", 1: "Pedestrian", 2: "Cyclist"}
    assert len(list((tmp_path / "out/images/val").iterdir())) == 1  # seeded 8:2-style split (here 1 of 4)


def test_dontcare_mask_paints_ignored_pixels_but_not_kept_boxes(tmp_path):
    """dontcare=mask greys DontCare pixels (114) in the written image, except inside kept boxes; labels unchanged."""
    import numpy as np

    src = kitti_fixture(
        tmp_path / "kitti",
        {"000000": f"Car 0 0 0 40 20 80 60 {TAIL}\nDontCare -1 -1 -10 0 0 100 100 {TAIL}\n", "000001": ""},
    )
    for f in (src / "training" / "image_2").iterdir():
        Image.new("RGB", (200, 100), (10, 200, 30)).save(f)
    convert_kitti(src, tmp_path / "out", val_fraction=0.5, seed=0, dontcare="mask")
    a = np.array(Image.open(next((tmp_path / "out").glob("images/*/000000.png"))))
    assert (a[10, 10] == 114).all() and (a[30, 50] == (10, 200, 30)).all() and (a[50, 150] == (10, 200, 30)).all()
    b = np.array(Image.open(next((tmp_path / "out").glob("images/*/000001.png"))))
    assert (b == (10, 200, 30)).all()
    assert read_labels(tmp_path / "out")["000000"] == ["0 0.300000 0.400000 0.200000 0.400000"]
    with pytest.raises(KDError, match="dontcare=ignore is not one of drop, mask"):
        convert_kitti(src, tmp_path / "o2", dontcare="ignore")


def test_convert_mapping_all_types_and_split_is_seeded(tmp_path):
    """map= regroups before filtering; classes=all keeps 8 types; the same seed gives the same split."""
    src = kitti_fixture(tmp_path / "k", {f"{i:06d}": f"Van 0 0 0 1 1 50 50 {TAIL}\n" for i in range(10)})
    convert_kitti(src, tmp_path / "a", mapping={"Van": "Car"})
    assert all(v == ["0 0.127500 0.255000 0.245000 0.490000"] for v in read_labels(tmp_path / "a").values())
    convert_kitti(src, tmp_path / "b", classes="all")
    assert all(v[0].startswith("1 ") for v in read_labels(tmp_path / "b").values())  # Van is id 1 of ALL_TYPES
    assert sorted(p.name for p in (tmp_path / "a/images/val").iterdir()) == sorted(
        p.name for p in (tmp_path / "b/images/val").iterdir()
    )
    with pytest.raises(KDError, match="not among classes"):
        convert_kitti(src, tmp_path / "c", mapping={"Van": "Bus"})


def test_malformed_label_and_missing_dirs(tmp_path):
    """A short line names file:line; a folder without image_2/label_2 says where to point src."""
    bad = tmp_path / "bad.txt"
    bad.write_text(f"Car 0 0 0 1 1 5 5 {TAIL}\nCar 0.0 0 0.0 1 2\n")
    with pytest.raises(KDError, match=r"bad.txt:2: KITTI label line has 6 fields"):
        parse_label(bad)
    with pytest.raises(KDError, match="no image_2/ and label_2/"):
        convert_kitti(tmp_path, tmp_path / "o")


def test_synthetic_scenes_are_deterministic_and_valid(tmp_path):
    """Same seed, same files; every label parses and boxes lie inside the image."""
    a = make_synthetic_kitti(tmp_path / "a", n=5, seed=3)
    b = make_synthetic_kitti(tmp_path / "b", n=5, seed=3)
    for p in sorted((a / "label_2").iterdir()):
        assert p.read_text() == (b / "label_2" / p.name).read_text()
        w, h = Image.open(a / "image_2" / f"{p.stem}.png").size
        for name, x1, y1, x2, y2 in parse_label(p):
            assert name in {"Car", "Pedestrian", "Cyclist", "DontCare"} and 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h


def make_coco(root, crowd: bool = True) -> None:
    """A tiny COCO 2017 layout: 3 val images (one with only a non-traffic object), crowd and clipped boxes."""
    import json

    from PIL import Image

    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    ids = {"person": 1, "bicycle": 2, "car": 3, "motorcycle": 4, "bus": 6, "train": 7, "truck": 8, "traffic light": 10,
           "fire hydrant": 11, "stop sign": 13, "parking meter": 14, "cat": 17, "dog": 18, "pizza": 59}  # fmt: skip
    cats = [{"id": i, "name": n} for n, i in ids.items()]
    imgs = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 100, "height": 50} for i in (1, 2, 3)]
    for im in imgs:
        Image.new("RGB", (100, 50)).save(root / "val2017" / im["file_name"])
    anns = [
        {"image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 10], "iscrowd": 0},
        {"image_id": 1, "category_id": 1, "bbox": [90, 40, 20, 20], "iscrowd": 0},  # clipped to 90..100, 40..50
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": int(crowd)},
        {"image_id": 2, "category_id": 59, "bbox": [5, 5, 10, 10], "iscrowd": 0},  # pizza only: no kept object
        {"image_id": 3, "category_id": 18, "bbox": [40, 20, 10, 10], "iscrowd": 0},
    ]
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps({"images": imgs, "annotations": anns, "categories": cats})
    )


def test_coco_traffic_conversion(tmp_path):
    """Class ids remapped to the 13 traffic classes, crowd skipped, boxes clipped, empty images dropped or kept."""
    from yolo_kd.data.coco_traffic import TRAFFIC_CLASSES, convert_coco_traffic

    make_coco(tmp_path / "coco")
    data = yaml.safe_load(convert_coco_traffic(tmp_path / "coco", tmp_path / "out").read_text())
    assert data["names"][2] == "car" and len(data["names"]) == 13 and data["val"] == "images/val"
    labels = tmp_path / "out" / "labels" / "val"
    assert sorted(p.name for p in labels.iterdir()) == ["000000000001.txt", "000000000003.txt"]
    rows = [ln.split() for ln in (labels / "000000000001.txt").read_text().splitlines()]
    assert [r[0] for r in rows] == ["2", "0"]  # car -> 2, person -> 0; the crowd person is skipped
    assert [float(v) for v in rows[1][1:]] == pytest.approx([0.95, 0.9, 0.1, 0.2])
    assert (labels / "000000000003.txt").read_text().split()[0] == str(TRAFFIC_CLASSES.index("dog"))
    convert_coco_traffic(tmp_path / "coco", tmp_path / "all", keep_empty=True, link=True, classes=["dog"])
    kept = tmp_path / "all" / "labels" / "val"
    assert len(list(kept.iterdir())) == 3 and (kept / "000000000002.txt").read_text() == ""
    assert (tmp_path / "all" / "images" / "val" / "000000000001.jpg").is_symlink()


def test_coco_traffic_bad_input(tmp_path):
    """Missing annotations, a json without 'annotations', an unknown class: one-line errors."""
    import json

    from yolo_kd.cli import main
    from yolo_kd.data.coco_traffic import convert_coco_traffic

    with pytest.raises(KDError, match="no annotations/instances_train2017.json"):
        convert_coco_traffic(tmp_path, tmp_path / "o")
    make_coco(tmp_path / "coco")
    with pytest.raises(KDError, match=r"classes \['lorry'\] are not COCO categories"):
        convert_coco_traffic(tmp_path / "coco", tmp_path / "o", classes=["car", "lorry"])
    f = tmp_path / "coco" / "annotations" / "instances_val2017.json"
    f.write_text(json.dumps({"images": [], "categories": []}))
    with pytest.raises(KDError, match="lacks the 'annotations' key"):
        convert_coco_traffic(tmp_path / "coco", tmp_path / "o")
    assert main(["convert", "coco-traffic", f"src={tmp_path}", f"dst={tmp_path / 'o'}"]) == 2


def test_shipped_dataset_yamls_resolve_anywhere(tmp_path, monkeypatch):
    """`data=kitti.yaml` is the yaml shipped in the package (also in a wheel); run where data/kitti is missing it
    says how to make it, instead of Ultralytics' datasets-folder message."""
    import zipfile

    from yolo_kd.errors import KDError
    from yolo_kd.paths import DATASETS, resolve_data

    monkeypatch.chdir(tmp_path)
    with pytest.raises(KDError, match=r"yolo-kd convert kitti src=\.\.\. dst=data/kitti"):
        resolve_data("kitti.yaml")
    (tmp_path / "data" / "kitti").mkdir(parents=True)
    assert resolve_data("kitti.yaml") == str(DATASETS / "kitti.yaml")
    assert resolve_data("other.yaml") == "other.yaml"  # left to Ultralytics
    import shutil

    root = tmp_path / "src"  # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    src = Path(__file__).resolve().parents[1]
    shutil.copytree(src / "yolo_kd", root / "yolo_kd", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(src / f, root / f)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path / "whl"), str(root)], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr[-1500:]
    names = zipfile.ZipFile(next((tmp_path / "whl").glob("*.whl"))).namelist()
    assert {"yolo_kd/datasets/kitti.yaml", "yolo_kd/datasets/coco-traffic.yaml"} <= set(names)


def test_convert_prints_counts(tmp_path, capsys):
    """`convert kitti` says how many images per split, boxes per class and what it skipped."""
    make_synthetic_kitti(tmp_path / "k", n=6, seed=1)
    convert_kitti(tmp_path / "k", tmp_path / "y", val_fraction=0.5)
    out = capsys.readouterr().out
    lines = [ln for f in (tmp_path / "y" / "labels").rglob("*.txt") for ln in f.read_text().splitlines()]
    n = {c: sum(ln.startswith(f"{i} ") for ln in lines) for i, c in enumerate(("Car", "Pedestrian", "Cyclist"))}
    assert "KITTI: 3 train / 3 val images; boxes " in out and f"Car {n['Car']}, Pedestrian {n['Pedestrian']}" in out
    assert "skipped 0 other types" in out


def test_split_list_lines_starting_dot_slash_are_relative_to_the_list(tmp_path):
    """A .txt split reads './x' next to the list (as Ultralytics does) and other lines as given."""
    from yolo_kd.data.check import split_images

    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "train.txt").write_text("./a.png\n/abs/b.png\n\n")
    assert split_images(str(tmp_path / "lists" / "train.txt")) == [tmp_path / "lists" / "a.png", Path("/abs/b.png")]
