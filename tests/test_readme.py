"""The README stays true: its commands parse with the keys they use, its code compiles, its links exist, its table
cells stay short (issue 39). Nothing here trains; the plugin block is run in test_cli.py."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def commands() -> list[list[str]]:
    out = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip().removeprefix(".venv/bin/")
            if line.startswith("yolo-kd "):
                out.append(shlex.split(line)[1:])
    return out


@pytest.mark.parametrize("argv", commands(), ids=lambda a: " ".join(a)[:60])
def test_readme_command_parses(argv):
    """Each `yolo-kd ...` line names a real command and only keys that command takes (checked as the CLI checks them,
    before any work)."""
    import inspect

    from yolo_kd.cfg import split_overrides
    from yolo_kd.cli import COMMANDS, check_keys, parse_kv

    cmd, rest = argv[0], argv[1:]
    assert cmd in COMMANDS, cmd
    if cmd == "train":
        split_overrides(parse_kv(rest))
    elif cmd == "benchmark":
        kind, kv = rest[0], parse_kv(rest[1:])
        if kind == "kd":
            from yolo_kd.bench.kd import settings

            settings(kv.pop("preset", "cpu-small"), kv)
        elif kind == "diff":
            check_keys(kv, ("folders", "pairs", "level", "seeds"), "benchmark diff")
        else:
            assert kind in {"cost", "edge", "merge", "pick"}, kind
    elif cmd == "convert":
        assert rest[0] in {"kitti", "coco-traffic"}
    elif cmd != "methods":
        import importlib

        modules = {"export": "tools.export:export", "predict": "tools.predict:predict", "inspect":
                   "tools.inspect:run_inspect", "fix-bn": "tools.bn:fix_bn", "demo": "tools.demo:run_demo",
                   "train-teacher": "tools.teacher_train:train_teacher"}  # fmt: skip
        mod, fn = modules[cmd].split(":")
        f = getattr(importlib.import_module(f"yolo_kd.{mod}"), fn)
        params = inspect.signature(f).parameters
        allowed = getattr(f, "keys", None) or params
        if getattr(f, "keys", None) or not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            check_keys(parse_kv(rest), allowed, cmd)


def test_readme_python_compiles_and_links_exist():
    for code in blocks("python"):
        compile(code, "README", "exec")
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link


def test_readme_cells_are_short_and_first_screen_has_the_essentials():
    cells = [c.strip() for ln in README.splitlines() if ln.startswith("|") for c in ln.strip("|").split("|")]
    assert cells and max(map(len, cells)) <= 250, max(cells, key=len)
    first = README[: README.index("## More commands")]
    assert "pip install" in first and "pytest" in first and "yolo-kd train" in first and "KDTrainer" in first


def test_readme_methods_table_is_the_registry():
    """Issue 39 item 4: the README's methods table is what `yolo-kd methods format=md` prints (one source: the
    method classes' docstrings), so a method added, renamed or re-described cannot leave the README behind."""
    from yolo_kd.losses.registry import methods_markdown

    table = README.split("<!-- methods:start -->\n", 1)[1].split("\n<!-- methods:end -->", 1)[0]
    assert table == methods_markdown()


def test_every_measured_gain_in_the_readme_is_on_the_results_page():
    """Issue 39: a signed number in the README (a gain or an interval end) is quoted from docs/results.md, where its
    footing, seeds and experiment are; a README that drifts from the results page fails here."""
    results = (ROOT / "docs" / "results.md").read_text()
    missing = sorted({n for n in re.findall(r"(?<![\w.])[+-]\d+\.\d+", README) if n not in results})
    assert not missing, f"README numbers not in docs/results.md: {missing}"


def test_every_bench_folder_is_backed_by_an_experiment_and_indexed():
    """Issue 39: each docs/bench entry is named by an experiment file, each experiment file is in the index, and
    docs/bench/README.md (which experiment each entry backs) is current: `python benchmarks/bench_index.py`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_index", ROOT / "benchmarks" / "bench_index.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    listed = set(mod.experiments())
    files = {f"experiments/{p.name}" for p in (ROOT / "docs" / "experiments").glob("*.md")}
    assert files <= listed, f"experiments missing from docs/benchmarks.md's index: {sorted(files - listed)}"
    text = mod.index()
    assert "**none**" not in text, [ln for ln in text.splitlines() if "**none**" in ln]
    assert (ROOT / "docs" / "bench" / "README.md").read_text() == text, "run: python benchmarks/bench_index.py"
