"""Benchmark harness: aggregation arithmetic, settings checks, and one tiny end-to-end efficacy run (resumable)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from yolo_kd.bench.report import summarise, table
from yolo_kd.errors import KDError


def run(method: str, seed: int, m: float, step: float = 100.0) -> dict:
    """A minimal run record."""
    return {"method": method, "seed": seed, "mAP50": m + 0.2, "mAP50-95": m, "train_s": 10.0, "step_ms": step,
            "peak_mem_mb": 500.0, "per_class": {"Car": m}}  # fmt: skip


def test_summary_pairs_gains_by_seed_and_closes_gap():
    """Gain is paired per seed; gap closed = mean gain / (teacher - mean none)."""
    runs = [run("none", 0, 0.20), run("none", 1, 0.30), run("gkd", 0, 0.25), run("gkd", 1, 0.33)]
    rows = {r["method"]: r for r in summarise(runs, {"mAP50-95": 0.45, "mAP50": 0.7})}
    g = rows["gkd"]
    assert g["mAP50-95"] == pytest.approx(0.29) and g["mAP50-95_std"] == pytest.approx(math.sqrt(2 * 0.04**2))
    assert g["gain"] == pytest.approx(0.04)  # (0.05 + 0.03) / 2
    assert g["gain_std"] == pytest.approx(math.sqrt(2 * 0.01**2))
    assert g["gain_ci"] == pytest.approx(12.7062 * 0.01)  # t(0.975, df 1) * std / sqrt(2), std = 0.01 * sqrt(2)
    assert g["gap_closed"] == pytest.approx(0.04 / (0.45 - 0.25))
    assert rows["none"]["gain"] == 0.0
    md = table(list(rows.values()), {"mAP50-95": 0.45, "mAP50": 0.7}, ["bmfi-s0"])
    assert "| gkd | 2 | 49.0 ± 5.7 | 29.0 ± 5.7 | +4.0 [-8.7, +16.7] | 20 % |" in md and "bmfi-s0 | FAILED" in md
    rows = {
        r["method"]: r for r in summarise(runs + [run("gkd@u", 0, 0.30), run("gkd@u", 1, 0.36)], {"mAP50-95": 0.45})
    }
    assert rows["gkd@u"]["vs_plain"] == pytest.approx(0.04) and "vs_plain" not in rows["gkd"]  # paired with gkd


def test_paired_interval_against_every_reference():
    """Gains are paired by seed against none and builtin, with a 95 % t interval (df = seeds - 1)."""
    none = [0.20, 0.30, 0.25, 0.22]
    built = [0.24, 0.33, 0.27, 0.28]
    mine = [0.26, 0.36, 0.28, 0.31]
    runs = [run(m, i, v) for m, vs in (("none", none), ("builtin", built), ("gkd", mine)) for i, v in enumerate(vs)]
    rows = {r["method"]: r for r in summarise(runs, {"mAP50-95": 0.45, "mAP50": 0.7})}
    d = [a - b for a, b in zip(mine, built)]  # 0.02, 0.03, 0.01, 0.03
    mean = sum(d) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 3)
    assert rows["gkd"]["vs_builtin"] == pytest.approx(mean)
    assert rows["gkd"]["vs_builtin_ci"] == pytest.approx(3.1824 * sd / 2, rel=1e-4)
    assert "vs_builtin" not in rows["builtin"] and "vs_ultralytics" not in rows["gkd"]
    md = table(list(rows.values()), {"mAP50-95": 0.45, "mAP50": 0.7}, [])
    assert "vs builtin [95 % CI]" in md and "vs ultralytics" not in md


def test_summary_without_none_has_no_gain():
    """Without a ``none`` run there is nothing to pair with: no gain column value, no gap."""
    rows = summarise([run("gkd", 0, 0.3)], {"mAP50-95": 0.4, "mAP50": 0.6})
    assert "gain" not in rows[0] and "n/a" in table(rows, {"mAP50-95": 0.4, "mAP50": 0.6}, [])


def test_settings_errors():
    """Unknown preset, unknown argument and unknown method give one-line errors before anything trains."""
    from yolo_kd.bench.kd import run_kd_benchmark, settings

    with pytest.raises(KDError, match="unknown benchmark preset 'cpu'"):
        settings("cpu", {})
    with pytest.raises(KDError, match=r"unknown benchmark argument\(s\) \['epoch'\]"):
        settings("cpu-small", {"epoch": 3})
    assert settings("cpu-small", {"methods": "none,gkd+bmfi", "seeds": "0,2"})["seeds"] == [0, 2]
    with pytest.raises(KDError, match="jobs=x is not a count"):
        settings("cpu-small", {"jobs": "x"})
    with pytest.raises(KDError, match="unknown method 'gkdd'"):
        run_kd_benchmark(methods="none,gkdd")


def test_train_settings_checked_and_kept_apart(tmp_path):
    """train= takes Ultralytics settings for the students, refuses ones the harness owns or does not know (one line),
    and a folder holds runs of one train= only (an older folder counts as train={})."""
    import json

    from yolo_kd.bench.folder import check_folder
    from yolo_kd.bench.kd import settings

    assert settings("cpu-small", {"train": {"mixup": 0.5}})["train"] == {"mixup": 0.5}
    assert settings("cpu-small", {})["train"] == {}
    for bad, what in (({"epochs": 3}, "epochs"), ({"warmup_epochs": 0}, "warmup_epochs"), ({"mixupp": 1}, "mixupp")):
        with pytest.raises(KDError, match=rf"train= cannot set \['{what}'\]"):
            settings("cpu-small", {"train": bad})
    with pytest.raises(KDError, match="is not a mapping"):
        settings("cpu-small", {"train": "mixup"})
    with pytest.raises(KDError, match=r"'mixup=2.0' is an invalid value"):  # Ultralytics' range check, one line
        settings("cpu-small", {"train": {"mixup": 2.0}})
    cfg = {"data": "d", "teacher": "t", "student": "s", "epochs": 3, "imgsz": 64, "batch": 4, "close_mosaic": 0,
           "kd": {}, "labeled": 1.0, "teacher_precision": "fp32", "methods": ["none"]}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(cfg))  # made before train= existed
    check_folder(tmp_path, {**cfg, "train": {}})
    with pytest.raises(KDError, match=r"different train \(\[\{\}\] vs \[\{'mixup': 0.5\}\]\)"):
        check_folder(tmp_path, {**cfg, "train": {"mixup": 0.5}})


def test_folder_with_other_settings_is_refused(tmp_path):
    """Runs made with different epochs are never mixed into one table."""
    from yolo_kd.bench.folder import check_folder

    cfg = {"data": "d", "teacher": "t", "student": "s", "epochs": 3, "imgsz": 64, "batch": 4, "close_mosaic": 0,
           "kd": {}, "methods": ["none"]}  # fmt: skip
    check_folder(tmp_path, cfg)
    check_folder(tmp_path, cfg)
    with pytest.raises(KDError, match="different epochs"):
        check_folder(tmp_path, {**cfg, "epochs": 4})


def test_folder_made_with_another_teacher_precision_is_refused(tmp_path):
    """A folder from before auto became the default ran FP32 teachers: new default runs are refused there (the line
    names the kd= that continues it); kd= naming the precision counts as that precision."""
    import json

    from yolo_kd.bench.folder import check_folder

    cfg = {"data": "d", "teacher": "t", "student": "s", "epochs": 3, "imgsz": 64, "batch": 4, "close_mosaic": 0,
           "kd": {}, "labeled": 1.0, "methods": ["none"]}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(cfg))  # an older folder: no teacher_precision recorded
    with pytest.raises(
        KDError, match=r"different teacher_precision \(\['fp32'\] vs \['auto'\]\).*kd_teacher_precision: fp32"
    ):
        check_folder(tmp_path, {**cfg, "teacher_precision": "auto"})
    check_folder(tmp_path, {**cfg, "kd": {"kd_teacher_precision": "fp32"}, "teacher_precision": "auto"})
    bf16 = tmp_path / "bf16"
    check_folder(bf16, {**cfg, "kd": {"kd_teacher_precision": "bf16"}, "teacher_precision": "auto"})
    assert json.loads((bf16 / "config.json").read_text())["teacher_precision"] == "bf16"
    with pytest.raises(KDError, match=r"different teacher_precision \(\[.bf16.\] vs \[.auto.\]\)"):
        check_folder(bf16, {**cfg, "teacher_precision": "auto"})


def test_folder_from_another_footing_is_refused(tmp_path):
    """Runs of one seed pair only on one processor and library versions: a folder made elsewhere is refused, one made
    before footings were recorded is kept (and records this one)."""
    import json

    from yolo_kd.bench.folder import check_folder

    cfg = {"data": "d", "teacher": "t", "student": "s", "epochs": 3, "imgsz": 64, "batch": 4, "close_mosaic": 0,
           "kd": {}, "methods": ["none"]}  # fmt: skip
    here = {"cpu": "Intel Xeon", "gpu": "no GPU", "torch": "2.14.1", "ultralytics": "8.4.190", "opencv": "5.1.0"}
    check_folder(tmp_path, cfg)  # no footing known: an older folder
    check_folder(tmp_path, {**cfg, "footing": here})
    assert json.loads((tmp_path / "config.json").read_text())["footing"] == here
    check_folder(tmp_path, {**cfg, "footing": here})
    with pytest.raises(KDError, match=r"another footing \(opencv 5.1.0 -> 4.14.0\)"):
        check_folder(tmp_path, {**cfg, "footing": {**here, "opencv": "4.14.0"}})


def test_method_settings_resolve_code_and_pretrained_defaults():
    """A call records what each method trains with: crosskd's documented weight 20 for a .yaml student, 3 for a .pt
    one (R8), a kd= value over both, every parameter of every key; the stock peers record nothing."""
    from yolo_kd.bench.kd import method_settings

    got = method_settings(["none", "ultralytics", "crosskd", "crosskd@u"], "yolov8n.yaml", {})
    assert set(got) == {"crosskd", "crosskd@u"}
    assert got["crosskd"]["args"]["crosskd"]["weight"] == 20.0
    assert got["crosskd"]["kd_decay"] == "constant"
    assert method_settings(["crosskd"], "w.pt", {})["crosskd"]["args"]["crosskd"]["weight"] == 3.0
    both = method_settings(["gkd+bmfi"], "w.pt", {"gkd_weight": 6, "kd_teacher_precision": "bf16"})["gkd+bmfi"]
    assert both["args"]["gkd"]["weight"] == 6 and both["args"]["bmfi"]["gamma"] == 6e-3
    assert both["kd_teacher_precision"] == "bf16"


def test_default_runs_leave_method_out_and_record_the_pick():
    """``default`` trains with method= left out, as a user would: the record names the method the code picked for that
    student (builtin at 12 for a .pt detection student, crosskd at 20 for a .yaml one, maskkd for a .pt seg student
    of a seg teacher, kptkd for a .pt pose student of a pose teacher), so a later change of default is caught by the
    folder check as any other changed setting."""
    from yolo_kd.bench.kd import method_settings
    from yolo_kd.bench.worker import named

    pt = method_settings(["default", "default@u"], "w.pt", {})
    assert pt["default"]["method"] == "builtin" and pt["default"]["args"] == {"builtin": {"weight": 12.0}}
    assert pt["default@u"]["method"] == "crosskd" and pt["default@u"]["args"]["crosskd"]["weight"] == 3.0  # R7's
    yaml = method_settings(["default"], "yolov8n.yaml", {})["default"]
    assert yaml["method"] == "crosskd" and yaml["args"]["crosskd"]["weight"] == 20.0
    assert method_settings(["default"], "w.pt", {}, "obb")["default"]["method"] == "cwd"
    seg = {t: method_settings(["default"], "w.pt", {}, "segment", t)["default"] for t in ("segment", "detect")}
    assert (seg["segment"]["method"], seg["segment"]["args"]) == ("maskkd", {"maskkd": {"weight": 7.5}})
    assert (seg["detect"]["method"], seg["detect"]["args"]["crosskd"]["weight"]) == ("crosskd", 3.0)  # no masks to read
    pose = {t: method_settings(["default"], "w.pt", {}, "pose", t)["default"] for t in ("pose", "detect")}
    assert (pose["pose"]["method"], pose["pose"]["args"]) == (
        "kptkd",
        {"kptkd": {"pose_weight": 12.0, "kobj_weight": 1.0}},
    )
    assert (pose["detect"]["method"], pose["detect"]["args"]["crosskd"]["weight"]) == ("crosskd", 3.0)
    assert named("default") == {} and named("gkd+bmfi") == {"method": "gkd+bmfi"}


def test_folder_whose_method_defaults_changed_is_refused(tmp_path, capsys):
    """Runs of one method made before and after a default changed are two methods: the second call is refused in one
    line naming the setting, then and now; a method new to the folder joins; an older folder without the record
    keeps its runs and says so each time, never recording a setting its earlier runs may not have had."""
    from yolo_kd.bench.folder import check_folder

    cfg = {"data": "d", "teacher": "t", "student": "s", "epochs": 3, "imgsz": 64, "batch": 4, "close_mosaic": 0,
           "kd": {}, "labeled": 1.0, "teacher_precision": "fp32", "methods": ["crosskd"]}  # fmt: skip
    w20 = {"crosskd": {"args": {"crosskd": {"weight": 20.0, "tau": 1.0}}, "kd_decay": "constant"}}
    w3 = {"crosskd": {"args": {"crosskd": {"weight": 3.0, "tau": 1.0}}, "kd_decay": "constant"}}
    check_folder(tmp_path, {**cfg, "method_settings": w20})
    check_folder(tmp_path, {**cfg, "method_settings": w20})
    with pytest.raises(KDError, match=r"holds crosskd runs trained with crosskd_weight=20.0; .* crosskd_weight=3.0 "):
        check_folder(tmp_path, {**cfg, "method_settings": w3})
    gb = {"gkd+bmfi": {"args": {"gkd": {"weight": 6}}}}
    check_folder(tmp_path, {**cfg, "methods": ["gkd+bmfi"], "method_settings": gb})
    assert json.loads((tmp_path / "config.json").read_text())["method_settings"] == w20 | gb
    old = tmp_path / "old"
    (old / "runs" / "crosskd-s0").mkdir(parents=True)
    (old / "runs" / "crosskd-s0" / "bench.json").write_text(json.dumps(run("crosskd", 0, 0.3)))
    (old / "config.json").write_text(json.dumps(cfg))
    for settings in (w3, w20):  # neither is certified: the earlier runs' settings stay unknown, said each time
        check_folder(old, {**cfg, "method_settings": settings})
        assert "holds crosskd runs made before method settings were recorded" in capsys.readouterr().out
    check_folder(old, {**cfg, "methods": ["gkd+bmfi"], "method_settings": gb})  # a new method there is recorded
    rec = json.loads((old / "config.json").read_text())
    assert rec["method_settings"] == {"crosskd": None} | gb and rec["methods"] == ["crosskd", "gkd+bmfi"]


def test_cost_rejects_unknown_argument():
    """The cost benchmark names the bad argument."""
    from yolo_kd.bench.cost import run_cost_benchmark

    with pytest.raises(KDError, match=r"\['step'\]"):
        run_cost_benchmark(step=3)
    with pytest.raises(KDError, match=r"teacher_precision='int8' is not one of fp32, auto, fp16, bf16"):
        run_cost_benchmark(teacher_precision="int8")


def test_cost_reports_the_teacher_precision_each_method_ran_at():
    """A bf16 request times the teacher forward both ways and says whether each method's teacher kept bf16."""
    from yolo_kd.bench.cost import DEFAULTS, measure

    s = {**DEFAULTS, "imgsz": 64, "batch": 2, "steps": 1, "warmup": 1, "teacher_precision": "bf16"}
    alone = measure(s, None)
    assert alone["teacher_fwd_ms"] > 0 and alone["teacher_fwd_low_ms"] > 0
    assert measure(s, "mimic")["teacher"] in {"bfloat16", "fp32"}  # fp32 only when the parity check refused bf16
    assert "teacher_fwd_low_ms" not in measure({**s, "teacher_precision": "fp32"}, None)


@pytest.mark.parametrize("task, method", [("seg", "crosskd+maskkd"), ("pose", "crosskd+kptkd"), ("obb", "cwd")])
def test_cost_times_task_students_on_a_batch_of_their_task(task, method):
    """A -seg/-pose/-obb student is timed with its own loss on a real batch of its task (masks, keypoints, angles)."""
    from yolo_kd.bench.cost import DEFAULTS, measure, task_batch

    s = {**DEFAULTS, "teacher": f"yolov8n-{task}.yaml", "student": f"yolov8n-{task}.yaml", "imgsz": 64, "batch": 2,
         "steps": 1, "warmup": 0}  # fmt: skip
    full = {"seg": "segment"}.get(task, task)
    batch, _ = task_batch(full, "", 2, 64, "cpu")
    need = {"segment": "masks", "pose": "keypoints", "obb": "bboxes"}[full]
    assert len(batch["cls"]) > 0 and (full != "obb" or batch[need].shape[1] == 5) and need in batch
    assert measure(s, None)["step_ms"] > 0 and measure(s, method)["step_ms"] > 0


def test_tiny_benchmark_end_to_end_and_resume(tiny_data, teacher_pt, tmp_path, capsys):
    """Two methods x one seed, both at once: stock-validated records, table, CSV, plots, one log per run; a second call
    reruns nothing."""
    from yolo_kd.bench.kd import run_kd_benchmark

    kw = {"data": str(tiny_data), "teacher": str(teacher_pt), "methods": "none,mimic", "seeds": 0, "epochs": 1,
          "imgsz": 64, "batch": 4, "project": str(tmp_path), "jobs": 2}  # fmt: skip
    res = run_kd_benchmark(**kw)
    assert all((tmp_path / "runs" / n / "train.log").stat().st_size > 0 for n in ("none-s0", "mimic-s0"))
    runs = json.loads((tmp_path / "runs.json").read_text())["runs"]
    assert [r["method"] for r in runs] == ["none", "mimic"]
    for r in runs:
        assert 0 <= r["mAP50-95"] <= r["mAP50"] <= 1 and r["steps"] >= 1 and r["step_ms"] > 0
        assert (
            r["peak_mem_mb"] > 100 and len(r["curve"]) == 1 and set(r["per_class"]) <= {"Car", "Pedestrian", "Cyclist"}
        )
    assert (tmp_path / "runs.csv").read_text().startswith("method,seed,mAP50")
    assert {p.name for p in tmp_path.glob("*.png")} == {"map_per_epoch.png", "gain.png", "step_time.png"}
    assert "| mimic | 1 |" in res["table"]
    assert "kd={}, teacher_precision=auto" in (tmp_path / "table.md").read_text()  # the default, said in the header
    capsys.readouterr()
    run_kd_benchmark(**kw)
    assert capsys.readouterr().out.count("already done, skipped") == 2


def test_edge_benchmark_tiny(tiny_data, tmp_path):
    """PyTorch, OpenVINO FP32 and ONNX Runtime at one small size: one row each, mAP columns, end-to-end (numpy,
    in-graph on the IR, Ultralytics; from a decoded frame) and first-result timings."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from yolo_kd.bench.edge import run_edge_benchmark

    m = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    m.names = {0: "Car", 1: "Pedestrian", 2: "Cyclist"}
    torch.save({"model": m.half(), "train_args": {}}, tmp_path / "s.pt")
    table = run_edge_benchmark(
        str(tmp_path / "s.pt"),
        str(tiny_data),
        imgsz=64,
        formats="pytorch,openvino-fp32,onnx",
        runs=3,
        warmup=1,
        e2e_images=2,
        images=str(tiny_data.parent / "images" / "val"),
        out=str(tmp_path / "edge.md"),
    )  # fmt: skip  (images=: the end-to-end columns on a folder of frames)
    rows = [ln for ln in table.splitlines() if ln.startswith(("| pytorch", "| openvino", "| onnx"))]
    assert len(rows) == 3 and rows[0].split("|")[4].strip() == "1.00"
    cells = rows[1].split("|")
    assert float(cells[3]) > 0 and cells[9].count("/") == 2 and float(cells[10]) > 0
    assert cells[11].count("/") == 2 and float(cells[12]) > 0 and float(cells[13]) > 0  # from a frame; first result
    ort = rows[2].split("|")  # ONNX Runtime: no in-graph model ("-"), the Detector against InferenceSession.run
    assert ort[9].split("/")[1].strip() == "-" and ort[11].split("/")[1].strip() == "-" and float(ort[12]) > 0
    assert float(ort[13]) > 0
    assert (tmp_path / "edge.md").read_text().strip() == table.strip()
    with pytest.raises(KDError, match="unknown edge format"):
        run_edge_benchmark(str(tmp_path / "s.pt"), str(tiny_data), formats="tflite")
    with pytest.raises(KDError, match="does not exist"):
        run_edge_benchmark(str(tmp_path / "s.pt"), str(tiny_data), images=str(tmp_path / "no-frames"))


def test_labeled_split_and_variants(tiny_data, monkeypatch):
    """labeled=0.25 keeps a fixed quarter of the train images, pools the rest; variants map to runs; bad ones fail."""
    import yaml

    from yolo_kd.bench.labels import labeled_split, split_variant, variant_spec

    data, pool = labeled_split(str(tiny_data), 0.25)
    d = yaml.safe_load(open(data))
    lab = sorted(str(p.resolve()) for p in Path(d["train"]).iterdir())
    rest = open(pool).read().split()
    assert len(lab) == 3 and len(rest) == 9 and not set(lab) & {str(Path(f).resolve()) for f in rest}
    labels = sorted(Path(d["train"]).parent.joinpath("labels").iterdir())  # its own labels, hence its own cache
    assert [p.stem for p in labels] == [Path(f).stem for f in lab] and all(p.read_text() for p in labels)
    assert labeled_split(str(tiny_data), 0.25) == (data, pool)
    assert sorted(str(p.resolve()) for p in Path(d["train"]).iterdir()) == lab  # the same subset again
    monkeypatch.chdir(tiny_data.parent.parent)  # data= relative to the current folder (T7's first call)
    rel, _ = labeled_split(str(tiny_data.relative_to(tiny_data.parent.parent)), 0.25)
    assert Path(yaml.safe_load(open(rel))["train"]).is_absolute() and Path(rel).is_absolute()
    spec = {"method": "crosskd@u", "kd": {}, "data": data}
    assert variant_spec(spec, str(tiny_data), pool)["kd"]["unlabeled"] == pool
    assert variant_spec({**spec, "method": "none@all"}, str(tiny_data), pool)["data"] == str(tiny_data)
    with pytest.raises(KDError, match="cannot read unlabeled"):
        split_variant("none@u")
    with pytest.raises(KDError, match="unknown variant"):
        split_variant("crosskd@x")
    with pytest.raises(KDError, match="needs labeled= below 1"):
        from yolo_kd.bench.kd import run_kd_benchmark

        run_kd_benchmark(methods="crosskd@u")
