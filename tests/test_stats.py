"""yolo_kd.bench.stats on a small runs.csv fixture: references written out by hand (t quantiles from a table)."""

from __future__ import annotations

import math

import pytest

from yolo_kd.bench import stats
from yolo_kd.errors import KDError

T975 = {3: 3.182446305, 7: 2.364624252}  # Student t, 97.5th percentile, by degrees of freedom (printed tables)


def write(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["method,seed,mAP50,mAP50-95"] + [f"{m},{s},0.5,{v}" for m, s, v in rows]
    (folder / "runs.csv").write_text("\n".join(lines) + "\n")
    return str(folder)


@pytest.fixture
def folders(tmp_path):
    a = write(tmp_path / "a", [("none", s, v) for s, v in enumerate((0.30, 0.31, 0.29, 0.32))]
              + [("x", s, v) for s, v in enumerate((0.31, 0.33, 0.32, 0.36))]
              + [("all", s, 0.40) for s in range(4)])  # fmt: skip
    b = write(tmp_path / "b", [("x", s, v) for s, v in enumerate((0.32, 0.335, 0.33, 0.37))])
    return a, b


def test_paired_difference_and_t_interval(folders):
    """x - none per seed = 1, 2, 3, 4 points: mean 2.5, sd sqrt(5/3), half = t(0.975, 3) sd / 2."""
    half = T975[3] * math.sqrt(5 / 3) / 2
    out = stats.diff([folders[0]], ["x:none"])
    assert f"| x - none | +2.50 [{2.5 - half:+.2f}, {2.5 + half:+.2f}] | +1.00 / +2.00 / +3.00 / +4.00 |" in out
    assert "mean [95 % CI]" in out and "[97.5 % CI]" in stats.diff([folders[0]], ["x:none"], level=0.975)


def test_gap_share_suffix_pooling_and_seed_filter(folders):
    a, b = folders
    share = (1 / 10 + 2 / 9 + 3 / 11 + 4 / 8) / 4
    assert f"closed by x | {100 * share:.0f} % | 10 % / 22 % / 27 % / 50 % |" in stats.diff([a], ["x:none:all"])
    runs = stats.scores([a, f"{b}:v"])
    assert runs["x@v"] == pytest.approx({"0": 32.0, "1": 33.5, "2": 33.0, "3": 37.0})
    d = [1, 2, 3, 4, 1, 0.5, 1, 1]  # x - none, then x@v - x
    mean = sum(d) / 8
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / 7)
    half = T975[7] * sd / math.sqrt(8)
    pooled = stats.row(runs, "x:none,x@v:x")
    assert f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]" in pooled and "(8 pairs)" in pooled
    assert "+1.00 / +2.00 |" in stats.diff([a], ["x:none"], seeds="0,1")


def test_pick_takes_the_best_mean_gain_with_every_seed(folders, tmp_path):
    a, b = folders
    assert stats.pick(f"{a}/none", {"p": f"{a}/x", "q": f"{b}:v/x"}) == "q"  # +2.5 vs +3.375 points
    short = write(tmp_path / "c", [("x", 0, 0.9)])  # one seed of four: not ranked, however good
    assert stats.pick(f"{a}/none", {"p": f"{a}/x", "s": f"{short}/x"}) == "p"


def test_one_line_errors(folders, tmp_path):
    a, b = folders
    with pytest.raises(KDError, match="method 'y' is not in the folders"):
        stats.diff([a], ["y:none"])
    with pytest.raises(KDError, match="appears twice; give one of the folders a :SUFFIX"):
        stats.scores([a, b])
    with pytest.raises(KDError, match="runs.csv"):
        stats.scores([str(tmp_path / "nowhere")])
    with pytest.raises(KDError, match="level=2"):
        stats.diff([a], ["x:none"], level=2)


def test_diff_plot_draws_the_pairs(tmp_path):
    """``benchmark diff ... plot=F.png``: a forest plot of the A:B pairs is written; a plot of no A:B pair says so."""
    from yolo_kd.bench.forest import forest
    from yolo_kd.errors import KDError

    runs = {"a": {"0": 41.0, "1": 40.0, "2": 42.5}, "b": {"0": 40.0, "1": 40.5, "2": 41.0}}
    out = forest(runs, ["a:b", "b:a", "a:b:a"], tmp_path / "p" / "f.png", title="t")
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(KDError, match="plot= draws A:B pairs"):
        forest(runs, ["a:b:a"], tmp_path / "g.png")
    assert forest(runs, ["a:b,b:a"], tmp_path / "pooled.png").stat().st_size > 1000  # a pooled row alone is a plot


def test_pooled_differences_are_every_pairs_seeds():
    """``A:B,C:D`` pools each pair's per-seed differences (what the table's pooled row and the plot's use)."""
    from yolo_kd.bench.stats import differences

    runs = {
        "a": {"0": 41.0, "1": 40.0, "2": 42.5},
        "b": {"0": 40.0, "1": 40.5, "2": 41.0},
        "c": {"1": 39.0},
        "d": {"9": 1.0},
    }
    assert differences(runs, "a:b") == pytest.approx([1.0, -0.5, 1.5])
    assert sorted(differences(runs, "a:b,c:b")) == pytest.approx(sorted([1.0, -0.5, 1.5, -1.5]))
    with pytest.raises(KDError, match="no seed ran both"):
        differences(runs, "d:a")


def test_spaced_method_names_read_as_variants(tmp_path):
    """An older folder's 'gkd+bmfi a.25 t1' is 'gkd+bmfi@a.25@t1': nameable in pairs= (space-separated)."""
    (tmp_path / "runs.csv").write_text("method,seed,mAP50-95\ncrosskd auto,0,0.41\nnone,0,0.40\n")
    runs = stats.scores([str(tmp_path)])
    assert runs["crosskd@auto"]["0"] == pytest.approx(41.0) and set(runs) == {"crosskd@auto", "none"}
