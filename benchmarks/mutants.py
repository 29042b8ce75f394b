"""Single-change mutants of the loss files against their own golden tests (issue 37: goal >= 90 % killed).

Each mutant changes one operator, one detach, one reduction or one documented default in ``yolo_kd/losses/<m>.py``
(code lines only, not docstrings or comments); ``tests/losses/test_<m>.py`` then runs on it in a fresh process. A
mutant is killed when that test file fails. Usage: ``python benchmarks/mutants.py crosskd maskkd [--cap 30]``;
prints one row per method and the survivors (file:line and the change), and writes ``--out`` (markdown) if given.
Run it from a copy of the checkout (``git worktree add /tmp/mut HEAD``): it rewrites the loss files in place while it
runs, and any training started meanwhile from the same tree would import a mutant.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPS = [  # (pattern, replacement, label)
    (r"\.detach\(\)", "", "drop detach"),
    (r"\.mean\(", ".sum(", "mean->sum"),
    (r"\.sum\(", ".mean(", "sum->mean"),
    (r"(?<=[\w\)\]]) \+ (?=[\w\(])", " - ", "+ -> -"),
    (r"(?<=[\w\)\]]) - (?=[\w\(])", " + ", "- -> +"),
    (r"(?<=[\w\)\]]) \* (?=[\w\(])", " / ", "* -> /"),
    (r"(?<=[\w\)\]]) / (?=[\w\(])", " * ", "/ -> *"),
    (r"\*\* ?2\b", "**1", "square -> identity"),
    (r"\.sigmoid\(\)", "", "drop sigmoid"),
    (r"\bsoftmax\(", "log_softmax(", "softmax -> log_softmax"),
    (r"\.amax\(", ".amin(", "amax -> amin"),
    (r"clamp\(min=", "clamp(max=", "clamp min -> max"),
    (r"(?<=: float = )(\d+\.?\d*(?:e-?\d+)?)", None, "default x1.5"),
    (r"(?<=: int = )(\d+)", None, "default +1"),
]


def code_lines(text: str) -> list[bool]:
    """Per line: True for code, False inside docstrings, comments-only lines and decorators."""
    out, in_doc = [], False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(('"""', "'''")):
            quotes = s.count('"""') + s.count("'''")
            out.append(False)
            in_doc = in_doc ^ (quotes % 2 == 1)
            continue
        out.append(not in_doc and not s.startswith(("#", "@", "from ", "import ")) and bool(s))
    return out


def mutants(path: Path) -> list[tuple[int, str, str]]:
    """(line number, label, mutated file text) for every single change the operators allow."""
    text = path.read_text()
    lines, code = text.splitlines(keepends=True), code_lines(text)
    found = []
    for i, line in enumerate(lines):
        if not code[i]:
            continue
        body = line.split("  #")[0]
        for pat, rep, label in OPS:
            for m in re.finditer(pat, body):
                if rep is None:
                    v = m.group(1)
                    new = str(int(v) + 1) if label == "default +1" else repr(float(v) * 1.5)
                else:
                    new = rep
                changed = line[: m.start()] + new + line[m.end() :]
                found.append((i + 1, f"{label}: {line.strip()[:70]}", "".join(lines[:i] + [changed] + lines[i + 1 :])))
    return found


def killed(test: Path) -> bool:
    """True when the method's own test file fails on the current (mutated) source."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(test)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=600).returncode != 0


def main() -> None:
    """Run the mutants of each named method and print (and optionally write) the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("methods", nargs="+")
    ap.add_argument("--cap", type=int, default=40, help="at most this many mutants per file, evenly spaced")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    rows, survivors = [], []
    for name in a.methods:
        src, test = ROOT / "yolo_kd" / "losses" / f"{name}.py", ROOT / "tests" / "losses" / f"test_{name}.py"
        original = src.read_text()
        ms = mutants(src)
        if len(ms) > a.cap:
            step = len(ms) / a.cap
            ms = [ms[int(k * step)] for k in range(a.cap)]
        dead = 0
        try:
            for line, label, text in ms:
                src.write_text(text)
                if killed(test):
                    dead += 1
                else:
                    survivors.append(f"{name}.py:{line} {label}")
        finally:
            src.write_text(original)
        rows.append(f"| {name} | {len(ms)} | {dead} | {100 * dead / max(len(ms), 1):.0f} % |")
        print(rows[-1], flush=True)
    total = [int(r.split("|")[2]) for r in rows], [int(r.split("|")[3]) for r in rows]
    report = ["| method | mutants | killed | share |", "|---|---|---|---|", *rows,
              f"| all | {sum(total[0])} | {sum(total[1])} | {100 * sum(total[1]) / max(sum(total[0]), 1):.0f} % |",
              "", "Survivors:", *(f"- {s}" for s in survivors)]  # fmt: skip
    print("\n".join(report[-len(survivors) - 2 :]))
    if a.out:
        a.out.write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
