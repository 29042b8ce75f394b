"""Benchmark rounds from a YAML spec (``yolo-kd benchmark round spec=F.yaml``), in place of hand-written bash.

A round is a list of stages, each one ``yolo-kd benchmark`` command (``kd``, ``cost``, ``edge``, ``diff``, ``merge``,
``pick``) or a ``pytest`` call, run in order in its own process group under a time limit; ``parallel`` runs a list of
stages at once. ``pick`` applies the tuning rule (``benchmark pick``) and runs the stage its ``choose`` names for the
winning tag. After every stage the tables of each ``kd`` project and every log are packed into ``pack`` (what a GPU
call brings back), so a round cut short still returns what finished. Finished runs are kept by the harness: running a
round again resumes it.

Spec keys: ``about`` (text), ``vars`` (``${NAME}`` in any string; an environment variable of that name wins),
``env`` (set for every stage's process), ``set`` (defaults per stage kind, e.g. ``{kd: {preset: real, jobs: 2}}``),
``budget_s`` (the whole round), ``pack`` (a folder), ``stages``. A stage: ``{KIND: {key: value}, timeout: S}``
(``pytest: "ARGS"``); ``{parallel: [stage, ...]}``; ``{pick: {ref: F/M, TAG: F/M, ...}, choose: {TAG: stage}}``; any
stage may carry ``wait_for: PATH`` (start once that file exists, e.g. a teacher another stage is training).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from yolo_kd.errors import KDError

COMMANDS = ("kd", "cost", "edge", "diff", "merge", "pick")
KEYS = ("about", "vars", "env", "set", "budget_s", "pack", "stages")
TABLES = ("*.md", "*.csv", "*.json", "*.png")  # a kd project's tables; per run the small files below
RUN_FILES = ("bench.json", "results.csv", "args.yaml", "train.log", "spec.json")


def load(spec: str | Path) -> dict[str, Any]:
    """Read and check a round spec: every key, stage kind and ``${VAR}`` resolved before anything runs."""
    import yaml

    path = Path(spec)
    if not path.is_file():
        raise KDError(f"round spec {path} not found; pass spec=benchmarks/rounds/<name>.yaml")
    try:
        d = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", -2) + 1
        raise KDError(f"{path}: not valid YAML ({getattr(e, 'problem', e)}, line {line})") from None
    if not isinstance(d, dict) or not isinstance(d.get("stages"), list) or not d["stages"]:
        raise KDError(f"{path}: a round spec is a mapping with a non-empty 'stages:' list")
    if bad := sorted(set(d) - set(KEYS)):
        raise KDError(f"{path}: unknown key(s) {', '.join(bad)}; a spec has {', '.join(KEYS)}")
    names = {**{k: str(v) for k, v in (d.get("vars") or {}).items()}, **os.environ}  # vars are defaults
    d = substitute(d, names, path)
    for stage in d["stages"]:
        check_stage(stage, path)
        if not d.get("budget_s") and "wait_for" in str(stage) and "timeout" not in str(stage):
            raise KDError(f"{path}: a stage with wait_for needs a timeout: (or the round a budget_s:) to stop waiting")
    return d


def substitute(x: Any, names: dict[str, str], path: Path) -> Any:
    """``${NAME}`` replaced in every string of ``x``; an unknown name is an error."""
    if isinstance(x, dict):
        return {k: substitute(v, names, path) for k, v in x.items()}
    if isinstance(x, list):
        return [substitute(v, names, path) for v in x]
    if not isinstance(x, str):
        return x

    def one(m: re.Match) -> str:
        if m.group(1) not in names:
            name = m.group(1)
            raise KDError(f"{path}: ${{{name}}} is neither in vars: nor set; run {name}=... yolo-kd benchmark round")
        return names[m.group(1)]

    return re.sub(r"\$\{(\w+)\}", one, x)


def check_stage(stage: Any, path: Path) -> None:
    """One-line error for a stage that is not ``{KIND: {...}}`` (+ timeout), ``parallel`` or ``pick`` + ``choose``."""
    if not isinstance(stage, dict):
        raise KDError(f"{path}: stage {stage!r} is not a mapping like {{kd: {{methods: none}}, timeout: 600}}")
    if "parallel" in stage:
        if not isinstance(stage["parallel"], list) or set(stage) - {"parallel", "wait_for"}:
            raise KDError(f"{path}: a parallel stage is {{parallel: [stage, ...]}} (+ wait_for), not {stage!r}")
        for s in stage["parallel"]:
            check_stage(s, path)
        return
    kinds = [k for k in stage if k in (*COMMANDS, "pytest")]
    extra = set(stage) - {*kinds, "timeout", "choose", "wait_for"}
    if len(kinds) != 1 or extra:
        raise KDError(f"{path}: stage {stage!r} needs exactly one of {', '.join(COMMANDS)}, pytest (+ timeout)")
    if "choose" in stage:
        if kinds != ["pick"]:
            raise KDError(f"{path}: 'choose:' belongs to a pick stage, not {kinds[0]}")
        for s in stage["choose"].values():
            check_stage(s, path)


def argv(kind: str, kv: Any) -> list[str]:
    """The command line of one stage: ``python -m yolo_kd.cli benchmark KIND k=v ...`` or ``python -m pytest``."""
    import yaml

    if kind == "pytest":
        return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *str(kv).split()]

    def text(v: Any) -> str:
        if isinstance(v, dict):
            return yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()
        return ",".join(map(str, v)) if isinstance(v, list) else str(v)

    args = (f"{k}={text(v)}" for k, v in kv.items() if v is not None)  # null drops a key that set: gave
    return [sys.executable, "-m", "yolo_kd.cli", "benchmark", kind, *args]


def run_cmd(cmd: list[str], log: Path, timeout: float, env: dict[str, Any] | None = None) -> tuple[str, float]:
    """Run ``cmd`` in its own process group, output to ``log``; ('ok' | 'failed' | 'timeout', seconds)."""
    t0 = time.time()
    with open(log, "w") as fh:
        fh.write(" ".join(cmd) + "\n")
        fh.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in (env or {}).items()}}
        p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            rc = p.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # the harness's workers too
            p.wait()
            return "timeout", time.time() - t0
    return ("ok" if rc == 0 else "failed"), time.time() - t0


class Round:
    """One round's run: its stages in order, the budget, the logs and the packing."""

    def __init__(self, spec: dict[str, Any], logs: Path) -> None:
        self.spec, self.logs, self.count = spec, logs, itertools.count(1)
        self.deadline = time.time() + float(spec.get("budget_s") or 1e9)
        self.projects: list[Path] = []
        self.status: list[str] = []
        logs.mkdir(parents=True, exist_ok=True)
        from yolo_kd.bench.report import footing

        (logs / "device.json").write_text(json.dumps(footing(), indent=1))  # which machine every table came from

    def run(self) -> list[str]:
        """Every stage; one status line per stage (also printed); the tables packed after each."""
        for stage in self.spec["stages"]:
            self.stage(stage)
            self.pack()
        return self.status

    def stage(self, stage: dict[str, Any]) -> str:
        """Run one stage (a parallel group waits for all of its stages); its status word."""
        until = min(self.deadline, time.time() + float(stage.get("timeout") or 1e9)) - 5
        while stage.get("wait_for") and not Path(stage["wait_for"]).exists() and time.time() < until:
            time.sleep(2)
        if "parallel" in stage:
            with ThreadPoolExecutor(len(stage["parallel"])) as ex:
                words = list(ex.map(self.stage, stage["parallel"]))
            return "ok" if all(w == "ok" for w in words) else "failed"
        kind = next(k for k in stage if k in (*COMMANDS, "pytest"))
        kv = stage[kind] if kind == "pytest" else {**(self.spec.get("set") or {}).get(kind, {}), **(stage[kind] or {})}
        if kind == "kd" and kv.get("project"):
            self.projects.append(Path(str(kv["project"])))
        n = next(self.count)
        log = self.logs / f"{n:02d}-{kind}.log"
        what = f"{kind} {kv}" if kind == "pytest" else f"{kind} {kv.get('project', '')}".strip()
        print(f"stage {n} {what}: running (log: {log})", flush=True)
        left = self.deadline - time.time()
        if left < 5:
            word, secs = "skipped (budget spent)", 0.0
        else:
            limit = min(float(stage.get("timeout") or 1e9), left)
            word, secs = run_cmd(argv(kind, kv), log, limit, self.spec.get("env"))
        line = f"stage {n} {what}: {word} ({secs:.0f} s)"
        print(line, flush=True)
        self.status.append(line)
        if kind == "pick" and word == "ok":
            tag = log.read_text().split()[-1]
            print(f"pick: {tag}", flush=True)
            self.status.append(f"pick: {tag}")
            if tag in (stage.get("choose") or {}):
                return self.stage(stage["choose"][tag])
        return word

    def pack(self) -> None:
        """``pack``/<project>.tgz with each kd project's tables and per-run files; the logs beside them."""
        if not self.spec.get("pack"):
            return
        out = Path(self.spec["pack"])
        out.mkdir(parents=True, exist_ok=True)
        for p in dict.fromkeys(self.projects):
            files = [f for g in TABLES for f in p.glob(g)] + [f for n in RUN_FILES for f in p.glob(f"runs/*/{n}")]
            if files:
                with tarfile.open(out / f"{p.name}.tgz", "w:gz") as tar:
                    for f in files:
                        tar.add(f, arcname=str(f.relative_to(p)))
        with tarfile.open(out / "logs.tgz", "w:gz") as tar:
            tar.add(self.logs, arcname="logs")


def run_round(spec: str, logs: str | None = None) -> list[str]:
    """``yolo-kd benchmark round spec=F.yaml [logs=DIR]``: run the round; one line naming each unfinished stage."""
    d = load(spec)
    if d.get("about"):
        print(" ".join(str(d["about"]).split()), flush=True)
    status = Round(d, Path(logs or Path(d.get("pack") or "runs/rounds") / "logs")).run()
    bad = [s for s in status if not s.startswith("pick:") and ": ok (" not in s]
    if bad:
        raise KDError(f"{len(bad)} stage(s) did not finish: " + "; ".join(bad))
    return status
