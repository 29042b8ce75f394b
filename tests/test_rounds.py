"""``yolo-kd benchmark round``: YAML specs run as stages (order, pick -> choose, timeouts, budget, packing).

The stages here are ``diff``/``pick``/``merge`` over small runs.csv fixtures (real subprocesses, no training); the
timeout test kills a sleeping process tree. Every shipped spec in benchmarks/rounds/ must load.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from yolo_kd.bench import rounds
from yolo_kd.cli import main
from yolo_kd.errors import KDError

SPECS = sorted((Path(__file__).parents[1] / "benchmarks" / "rounds").glob("*.yaml"))


def write_runs(folder: Path, method: str, values: list[float]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{method},{s},0.5,{v}\n" for s, v in enumerate(values))
    (folder / "runs.csv").write_text("method,seed,mAP50,mAP50-95\n" + rows)
    return str(folder)


def spec_file(tmp_path: Path, spec: dict) -> str:
    f = tmp_path / "round.yaml"
    f.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(f)


@pytest.fixture
def tuned(tmp_path):
    """A reference and two variants: b gains 2 points per seed over ref, a gains 1."""
    ref = write_runs(tmp_path / "ref", "ultralytics", [0.30, 0.31, 0.32, 0.33])
    a = write_runs(tmp_path / "a", "crosskd", [0.31, 0.32, 0.33, 0.34])
    b = write_runs(tmp_path / "b", "crosskd", [0.32, 0.33, 0.34, 0.35])
    return ref, a, b


def test_pick_runs_the_stage_its_winner_chooses_and_packs_the_logs(tmp_path, tuned):
    ref, a, b = tuned
    plot_a, plot_b = tmp_path / "a.png", tmp_path / "b.png"
    spec = {
        "vars": {"REF": ref},
        "pack": str(tmp_path / "out"),
        "stages": [
            {"diff": {"folders": f"{ref},{b}:b", "pairs": "crosskd@b:ultralytics"}},
            {
                "pick": {"ref": "${REF}/ultralytics", "a": f"{a}/crosskd", "b": f"{b}/crosskd"},
                "choose": {
                    "a": {"diff": {"folders": f"{ref},{a}:a", "pairs": "crosskd@a:ultralytics", "plot": str(plot_a)}},
                    "b": {"diff": {"folders": f"{ref},{b}:b", "pairs": "crosskd@b:ultralytics", "plot": str(plot_b)}},
                },
            },
        ],
    }
    status = rounds.run_round(spec_file(tmp_path, spec))
    assert [s.split(":")[0] for s in status] == ["stage 1 diff", "stage 2 pick", "pick", "stage 3 diff"]
    assert "pick: b" in status and plot_b.stat().st_size > 1000 and not plot_a.exists()
    logs = tmp_path / "out" / "logs"
    diff_log = (logs / "01-diff.log").read_text()
    assert "| crosskd@b - ultralytics | +2.00 " in diff_log  # the stage ran the real `benchmark diff`
    with tarfile.open(tmp_path / "out" / "logs.tgz") as tar:
        assert {"logs/01-diff.log", "logs/02-pick.log", "logs/03-diff.log", "logs/device.json"} <= set(tar.getnames())


def test_a_stage_past_its_timeout_is_killed_with_its_children(tmp_path):
    child = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); open({str(child)!r}, 'w')"
        ".write(str(p.pid)); time.sleep(60)"
    )
    t0 = time.time()
    word, secs = rounds.run_cmd([sys.executable, "-c", code], tmp_path / "x.log", timeout=2)
    assert word == "timeout" and 1.5 < secs < 20 and time.time() - t0 < 20
    pid = int(child.read_text())
    time.sleep(0.5)
    gone = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    assert gone in {"", "Z"}, f"the stage's child {pid} survived its timeout ({gone})"


def test_failed_and_budget_skipped_stages_are_named_in_one_line(tmp_path, tuned):
    spec = {"stages": [{"diff": {"folders": str(tmp_path / "nosuch"), "pairs": "a:b"}}]}
    with pytest.raises(KDError, match=r"1 stage\(s\) did not finish: stage 1 diff: failed"):
        rounds.run_round(spec_file(tmp_path, spec), logs=str(tmp_path / "l1"))
    assert "nosuch" in (tmp_path / "l1" / "01-diff.log").read_text()  # the stage's own one-line error is in its log
    spec = {"budget_s": 3, "stages": [{"diff": {"folders": tuned[0], "pairs": "ultralytics:ultralytics"}}] * 2}
    with pytest.raises(KDError, match=r"2 stage\(s\).*skipped \(budget spent\)"):
        rounds.run_round(spec_file(tmp_path, spec), logs=str(tmp_path / "l2"))


def test_set_defaults_merge_into_stages_and_null_drops_a_key():
    cmd = rounds.argv("kd", {"preset": "real", "seeds": [10, 11], "kd": {"crosskd_weight": 3}, "data": None})
    assert cmd[:5] == [sys.executable, "-m", "yolo_kd.cli", "benchmark", "kd"]
    assert cmd[5:] == ["preset=real", "seeds=10,11", "kd={crosskd_weight: 3}"]
    assert rounds.argv("pytest", "tests/x.py -k gpu")[-3:] == ["tests/x.py", "-k", "gpu"]


def test_environment_overrides_vars(tmp_path, monkeypatch):
    spec = {"vars": {"P": "from-vars"}, "stages": [{"merge": {"out": "${P}/m", "folders": "x"}}]}
    f = spec_file(tmp_path, spec)
    assert rounds.load(f)["stages"][0]["merge"]["out"] == "from-vars/m"
    monkeypatch.setenv("P", "from-env")
    assert rounds.load(f)["stages"][0]["merge"]["out"] == "from-env/m"


@pytest.mark.parametrize(
    "text, says",
    [
        ("stages: []\n", "non-empty 'stages:'"),
        ("stages: [{kd: {}}]\nstagez: 1\n", "unknown key(s) stagez"),
        ("stages: [{train: {epochs: 1}}]\n", "needs exactly one of kd"),
        ("stages: [{diff: {}, choose: {a: {diff: {}}}}]\n", "'choose:' belongs to a pick stage"),
        ("stages: [{kd: {project: '${NOSUCH_VAR_R}'}}]\n", "${NOSUCH_VAR_R} is neither in vars"),
        ("stages: [{kd: {project: x}, wait_for: t.json}]\n", "wait_for needs a timeout"),
        ("stages: [{parallel: {kd: {}}}]\n", "a parallel stage is"),
        ("stages: [kd: {a: b}: c]\n", "not valid YAML"),
    ],
)
def test_bad_specs_are_one_line_before_anything_runs(tmp_path, capsys, text, says):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    before = set(os.listdir(tmp_path))
    assert main(["benchmark", "round", f"spec={f}", f"logs={tmp_path / 'logs'}"]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err
    assert set(os.listdir(tmp_path)) == before  # no logs folder, nothing written


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_every_shipped_round_spec_loads(spec, monkeypatch):
    for name in ("DATA", "TEACHER", "OUT"):
        monkeypatch.setenv(name, f"/tmp/{name.lower()}")
    d = rounds.load(spec)
    assert d["about"] and d["stages"]
