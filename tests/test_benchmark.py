"""
``scripts/benchmark.py`` and ``scripts/bench_report.py``: statistics and reports checked by hand, studies, resumption
from committed results, the timing callback, and (slow) the smoke sweep on a local Ray instance in a subprocess.
"""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.scripts import load_script

pytest.importorskip("rl_zoo3")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "benchmark.py"
#: A CartPole-v1 result of GPG as an earlier version of the benchmark wrote it (no provenance, the file in its key).
EARLIER = Path(__file__).parent / "data" / "earlier_result.json"


bench, report = load_script("benchmark"), load_script("bench_report")


def run(algo: str, seed: int, final: float, curve: list[tuple[float, float]], wall: float, rate: float, **extra) -> dict:
    """A run result with the fields the reports read; ``curve`` is ``(training seconds, mean return)`` pairs."""
    points = [
        {"nominal": i, "steps": 10 * i, "wall_s": w, "mean": m, "std": 0.0, "episodes": 1} for i, (w, m) in enumerate(curve)
    ]
    result = {"algo": algo, "env_id": "CartPole-v1", "seed": seed, "n_timesteps": 100, "final_mean": final, "curve": points}
    result |= {"train_wall_s": wall, "steps_per_s": rate, "params": 50 if algo == "gpg" else 100, "episode_returns": [final]}
    result |= {"peak_rss_mib": 300.0 if algo == "gpg" else 400.0, "auc": final / 2, "eval_timesteps": 10, "time_s": {}}
    return result | {"threshold": 475.0, "threshold_steps": None, "threshold_wall_s": None, **extra}


TASK = bench.Task("CartPole-v1", 100, "test", 10, 475.0, "test", 20.0)


def test_interquartile_mean() -> None:
    assert report.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # drops 1, 2 and 7, 8
    assert report.iqm([[10.0, 0.0], [1.0, 2.0]]) == pytest.approx(1.5)
    assert report.iqm([1.0, 2.0, 100.0]) == pytest.approx(103.0 / 3)  # fewer than 4: no cut
    assert np.isnan(report.iqm([]))


def test_probability_of_improvement() -> None:
    # Pairs (1, 0) (1, 2) (2, 0) (2, 2): 1 + 0 + 1 + 0.5 out of 4.
    assert report.probability_of_improvement({"a": [1.0, 2.0]}, {"a": [0.0, 2.0]}) == pytest.approx(0.625)
    x, y = {"a": [1.0, 2.0], "b": [5.0], "c": [9.0]}, {"a": [0.0, 2.0], "b": [6.0]}  # "c": one side only, ignored
    assert report.probability_of_improvement(x, y) == pytest.approx((0.625 + 0.0) / 2)
    assert report.probability_of_improvement(y, x) == pytest.approx((0.375 + 1.0) / 2)
    assert np.isnan(report.probability_of_improvement({"a": [1.0]}, {"b": [1.0]}))


def test_stratified_bootstrap() -> None:
    # One run per task: every resample is the data, the interval collapses onto the point.
    assert report.stratified_bootstrap(lambda s: s["a"].mean(), [{"a": [3.0]}], 50) == [3.0, 3.0, 3.0]
    # Resampling stays within each task: a statistic of one task never sees the other's values.
    samples = [{"a": [0.0, 1.0, 2.0, 3.0], "b": [100.0, 101.0]}]
    point, low, high = report.stratified_bootstrap(lambda s: s["a"].mean(), samples, 500)
    assert point == pytest.approx(1.5) and 0.0 <= low < point < high <= 3.0
    assert report.stratified_bootstrap(lambda s: s["a"].mean(), samples, 500) == [point, low, high]  # seeded


def test_curve_area_and_log_curve() -> None:
    assert bench.curve_area([0, 50, 100], [0.0, 10.0, 10.0], 100) == pytest.approx(7.5)  # 250 + 500 over 100 steps
    assert bench.curve_area([0, 200], [0.0, 20.0], 100) == pytest.approx(5.0)  # a point past the budget interpolates
    assert bench.curve_area([50], [4.0], 100) == pytest.approx(4.0) and np.isnan(bench.curve_area([], [], 100))
    # The logged values by period: rows at steps 0, 10, 60, 99 of a 100-step budget in 2 periods; NaN: not logged.
    columns = {"train/kl": [1.0, 3.0, 5.0, float("nan")], "gpg/x": [float("nan")] * 2 + [2.0, 4.0]}
    assert bench.log_curve(columns, [0, 10, 60, 99], 100, periods=2) == {"train/kl": [2.0, 5.0], "gpg/x": [None, 3.0]}
    assert bench.log_curve({"a": [7.0]}, [150], 100, periods=4) == {"a": [None, None, None, 7.0]}  # past the budget
    assert report.normalized(60.0, 20.0, 100.0) == pytest.approx(0.5) and report.normalized(1.0, 2.0, 2.0) is None


def test_verdicts_from_intervals() -> None:
    # Constant runs: every resample gives the same statistic, so the intervals collapse on hand-computed values.
    task = bench.Task("CartPole-v1", 100, "test", 10, 475.0, "test", 0.0)
    results = [run("gpg", s, 480.0, [], 1.0, 1.0) for s in (10, 11, 12)] + [run("ppo", s, 240.0, [], 1.0, 1.0) for s in (0, 1)]
    (row,) = report.verdicts(results, [task], reps=50)
    assert row["normalized"] == [2.0, 2.0, 2.0] and row["p_improvement"] == [1.0, 1.0, 1.0] and row["verdict"] == "win"
    assert (row["gpg_seeds"], row["ppo_seeds"], row["gpg_below"], row["ppo_below"]) == (3, 2, 0, 2)
    assert row["gpg_iqm"] == [480.0, 480.0, 480.0] and row["ppo_worst"] == 240.0
    (row,) = report.verdicts([{**r, "algo": {"gpg": "ppo", "ppo": "gpg"}[r["algo"]]} for r in results], [task], reps=50)
    assert row["normalized"] == [0.5, 0.5, 0.5] and row["verdict"] == "loss"
    # Overlapping runs: the intervals straddle 1 and 1/2, so parity whatever the point estimates.
    mixed = [run("gpg", s, f, [], 1.0, 1.0) for s, f in enumerate((100.0, 300.0, 500.0))]
    mixed += [run("ppo", s, f, [], 1.0, 1.0) for s, f in enumerate((200.0, 300.0, 400.0))]
    (row,) = report.verdicts(mixed, [task], reps=200)
    assert row["normalized"][1] < 1 < row["normalized"][2] and row["p_improvement"][1] < 0.5 < row["p_improvement"][2]
    assert row["verdict"] == "parity"
    # PPO below a random policy: the normalized ratio is negative, the verdict still follows P(GPG > PPO).
    (row,) = report.verdicts([*results[:3], run("ppo", 0, -10.0, [], 1.0, 1.0)], [task], reps=50)
    assert row["normalized"][0] < 0 and row["verdict"] == "win"
    assert report.verdicts(results[:3], [task], reps=10) == []  # no PPO run: no row


def test_overall_weighs_every_task_the_same() -> None:
    # Two tasks, constant runs: CartPole GPG 480 vs PPO 240 (random 0): 2.0; Walker GPG 110 vs PPO 1010 (random 10):
    # 0.1. The mean 1.05 keeps the weak task in (a pooled IQM of the runs would trim it away); P(GPG > PPO): (1 + 0) / 2.
    tasks = [bench.Task("CartPole-v1", 100, "t", 10, 475.0, "t", 0.0), bench.Task("Walker2d-v5", 1, "t", 1, None, "t", 10.0)]
    results = [run("gpg", s, 480.0, [], 1.0, 1.0) for s in (10, 11)] + [run("ppo", s, 240.0, [], 1.0, 1.0) for s in (0, 1)]
    walker = [run("gpg", s, 110.0, [], 1.0, 1.0) for s in (10, 11)] + [run("ppo", s, 1010.0, [], 1.0, 1.0) for s in (0, 1)]
    total = report.overall(results + [{**r, "env_id": "Walker2d-v5"} for r in walker], tasks, reps=50)
    assert total["tasks"] == 2 and total["p_improvement"] == [0.5, 0.5, 0.5] and total["verdict"] == "parity"
    assert np.allclose(total["normalized"], 1.05)
    # A task without PPO's runs is not in it.
    assert report.overall([*results, *walker[:2]], tasks, reps=10)["tasks"] == 1


def test_reports_keep_the_columns_and_read_both_result_versions() -> None:
    old_split = {"env": 1.0, "inference": 1.0, "advantages": 0.5, "updates": 2.0, "other": 0.5}
    zoo_ppo = {
        "hyperparams_file": "/x/.venv/lib/python3.11/site-packages/rl_zoo3/hyperparams/ppo.yml",
        "hyperparams_entry": "CartPole-v1",
        "provenance": {"code": "stable-baselines3 2.9.2", "git_commit": "abc", "config_hash": "123"},
    }
    results = [
        run("gpg", 0, 160.0, [(0.0, 10.0), (4.0, 160.0)], 5.0, 3000.0, time_s=old_split),
        run(
            "ppo", 0, 100.0, [(0.0, 10.0), (10.0, 100.0)], 10.0, 1000.0, time_s={"rollout": 6.0, "updates": 3.5, "other": 0.5},
            **zoo_ppo,
        ),
    ]  # fmt: skip
    files = report.reports(results, [TASK], 20, "python scripts/benchmark.py --test")
    rows = list(csv.DictReader(io.StringIO(files["results.csv"])))
    before = """algo env_id seed n_timesteps env_steps final_mean final_std eval_episodes eval_timesteps auc threshold
    threshold_steps threshold_wall_s train_wall_s eval_wall_s setup_s steps_per_s params peak_rss_mib rss_imports_mib
    children_peak_rss_mib""".split()
    times = "time_env_s time_inference_s time_advantages_s time_updates_s time_other_s time_rollout_s".split()
    # the columns results.csv had before, then the CPU seconds, the times and what made the run
    cpu = ["idle_fraction", "train_cpu_s", "steps_per_cpu_s", "cpu_budget_s"]
    assert list(rows[0]) == [*before, *cpu, *times, "code", "git_commit", "config", "config_hash"]
    assert (rows[0]["code"], rows[0]["config"]) == ("unrecorded", "")
    assert [rows[1][c] for c in ("code", "git_commit", "config", "config_hash")] == [
        "stable-baselines3 2.9.2", "abc", "rl-zoo3 ppo.yml [CartPole-v1]", "123"
    ]  # fmt: skip
    assert rows[0]["time_updates_s"] == "2.0" and rows[0]["time_rollout_s"] == "" and rows[1]["time_env_s"] == ""
    assert rows[1]["time_rollout_s"] == "6.0" and rows[0]["threshold_steps"] == "" and rows[0]["seed"] == "0"
    assert "curves.csv" not in files and "results.json" not in files  # each run's data stays in its result.json
    markdown = files["benchmark.md"]
    assert "|gpg|CartPole-v1|160.000|0.000|0.1k|10|1|" in markdown and "|ppo|CartPole-v1|100.000|" in markdown
    assert "|CartPole-v1|gpg|1|160.0 +/- 0.0|80.0|475|not reached (0/1)|not reached|3000|5|50|300|-|40|" in markdown
    assert "|CartPole-v1|ppo|1|100.0 +/- 0.0|50.0|475|not reached (0/1)|not reached|1000|10|100|400|60|35|" in markdown
    assert "|CartPole-v1|gpg|unrecorded|-|unrecorded|0|" in markdown
    assert "|CartPole-v1|ppo|rl-zoo3 ppo.yml [CartPole-v1]|123|stable-baselines3 2.9.2|0|" in markdown
    assert report.seed_list([12, 10, 11, 3, 5, 4, 0]) == "0, 3-5, 10-12" and "Against the targets" not in markdown
    # With runs of equal compute: GPG's 60 in PPO's 8 CPU seconds, normalized (60 - 20) / (100 - 20).
    equal = [run("gpg", 0, 60.0, [(0.0, 10.0)], 9.0, 3000.0, cpu_budget_s=8.0, train_cpu_s=8.0)]
    equal_files = report.reports(results, [TASK], 20, "cmd", equal)
    equal_md = equal_files["benchmark.md"]
    assert "|CartPole-v1|8|8|60.0 [60.0, 60.0]|100.0 [100.0, 100.0]|0.50 [0.50, 0.50]|0.00 [0.00, 0.00]|" in equal_md
    assert "PPO's median CPU s" in equal_md and "training CPU seconds" in equal_md
    # The main tables also as CSV, cell for cell (the documentation's csv-tables); equal_compute only with such runs.
    assert sorted(n for n in equal_files if n.startswith("tables/")) == [
        f"tables/{name}.csv" for name in ("aggregate", "details", "equal_compute", "summary", "verdicts")
    ]
    # The summary: per task and over all tasks, at the same step budget and at equal compute.
    assert "|CartPole-v1|1.75 [1.75, 1.75]|win|0.50 [0.50, 0.50]|loss|" in equal_md
    assert "|all 1 tasks|1.75 [1.75, 1.75]|win|0.50 [0.50, 0.50]|loss|" in equal_md
    assert "|CartPole-v1|1.75 [1.75, 1.75]|win|\n" in files["benchmark.md"]
    assert "tables/equal_compute.csv" not in files
    (equal_row,) = csv.DictReader(io.StringIO(equal_files["tables/equal_compute.csv"]))
    assert equal_row["normalized [95% CI]"] == "0.50 [0.50, 0.50]" and equal_row["env"] == "CartPole-v1"
    # Earlier equal-time runs (wall-clock budgets, no CPU seconds) stay readable, labelled in seconds.
    timed = [run("gpg", 0, 60.0, [(0.0, 10.0)], 10.0, 3000.0, time_budget_s=10.0)]
    timed_md = report.reports(results, [TASK], 20, "cmd", timed)["benchmark.md"]
    assert "|CartPole-v1|10|10|60.0 [60.0, 60.0]|" in timed_md and "PPO's median s|" in timed_md
    assert files["aggregate.json"]["overall"]["final return"]["p_improvement"] == [1.0, 1.0, 1.0]
    assert "|AUC|1|2.00 [2.00, 2.00]|1.00 [1.00, 1.00]|win|" in files["benchmark.md"]  # (80 - 20) / (50 - 20)
    # With search_effort's rows: a section and tables/search.csv; without, neither.
    searched = report.reports(results, [TASK], 20, "cmd", search=[["CartPole-v1", "gpg", 3, 5, 6, "0.1", 2, 2]])
    assert "## How hard each side was searched" in searched["benchmark.md"] and "tables/search.csv" in searched
    assert "|CartPole-v1|gpg|3|5|6|0.1|2|2|" in searched["benchmark.md"] and "searched" not in files["benchmark.md"]


def test_history_keeps_what_was_shown_and_counts_the_looks() -> None:
    made = lambda config_hash: {  # noqa: E731
        "hyperparams_file": str(REPO / "hyperparams" / "gpg.yml"), "hyperparams_entry": "CartPole-v1",
        "provenance": {"code": "sb3-gpg 1 abc", "git_commit": "c0", "config_hash": config_hash},
    }  # fmt: skip
    earlier = [run("gpg", s, 100.0 + s, [], 1.0, 1.0) for s in (0, 1)]  # a report of other seeds, before provenance
    fresh = [run("gpg", s, 200.0 + s, [], 1.0, 1.0, **made("h1")) for s in (10, 11)]
    history = report.update_history({}, earlier)
    history = json.loads(json.dumps(report.update_history(history, fresh[:1])))  # a partial sweep, through the file
    before = json.dumps(history)
    history = report.update_history(history, fresh)
    assert json.dumps(history) != before and json.loads(before) != history  # the argument is left as it was
    rows = report.looks(history, fresh)
    # The fresh seeds were seen under one configuration: one look; the earlier report's figures stay, on seeds 0-1.
    assert [(r["shown"], r["looks"], r["seeds"], r["runs"], r["mean"], r["worst"]) for r in rows] == [
        (True, 1, "10-11", 2, 210.5, 210.0), (False, 1, "0-1", 2, 100.5, 100.0)
    ]  # fmt: skip
    assert rows[0]["config"] == "hyperparams/gpg.yml [CartPole-v1]" and rows[1]["code"] == "unrecorded"
    # The entry changes after its runs were seen, and its seeds run again: two looks, the first one's figures kept.
    changed = [run("gpg", s, 300.0, [], 1.0, 1.0, **made("h2")) for s in (10, 11)]
    history = report.update_history(history, changed)
    rows = report.looks(history, changed)
    assert [(r["config_hash"], r["shown"], r["looks"], r["mean"]) for r in rows] == [
        ("h2", True, 2, 300.0), (None, False, 2, 100.5), ("h1", False, 2, 210.5)
    ]  # fmt: skip
    files = report.reports([*changed, run("ppo", 0, 150.0, [], 1.0, 1.0)], [TASK], 20, "cmd", (), history)
    assert files["history.json"] == report.update_history(history, [run("ppo", 0, 150.0, [], 1.0, 1.0)])
    assert files["aggregate.json"]["looks"] == {"gpg CartPole-v1": 2, "ppo CartPole-v1": 1}
    markdown = files["benchmark.md"]
    shown = "|CartPole-v1|gpg|2|this report|hyperparams/gpg.yml [CartPole-v1]|h2|sb3-gpg 1 abc|10-11|2|300.0|300.0|300.0|"
    assert shown in markdown
    assert "|CartPole-v1|gpg||earlier|unrecorded|-|unrecorded|0-1|2|100.5|100.5|100.0|" in markdown
    assert "history.json" not in report.reports(changed, [TASK], 20, "cmd")  # no history given: none kept


def test_committed_results_are_finished_runs(tmp_path: Path) -> None:
    # A result written by the earlier version (absolute config path in its key) is found by a spec that
    # plans the same settings from another checkout, and only by one.
    committed = json.loads(EARLIER.read_text())
    (tmp_path / "result.json").write_text(json.dumps(committed))
    spec = {**committed["key"], "run_dir": str(tmp_path), "threshold": 475.0, "torch_threads": 1}
    spec["config"] = {**spec["config"], "file": "/elsewhere/hyperparams/gpg.yml"}
    assert bench.finished_result(spec) == committed
    assert bench.finished_result({**spec, "eval_episodes": 21}) is None
    edited = {**spec["config"], "values": {**spec["config"]["values"], "learning_rate": 0.5}}
    assert bench.finished_result({**spec, "config": edited}) is None
    # What the sweep plans is keyed exactly like the committed results.
    args = bench.parse_args(["--tasks", "CartPole-v1", "--seeds", "0", "--out", str(tmp_path)])
    planned = bench.plan_runs(args, bench.resolve_tasks(args), tmp_path)
    assert [p["algo"] for p in planned] == ["gpg", "ppo"]
    assert all(set(bench.run_key(p)) == set(committed["key"]) and p["eval_freq"] == 5000 for p in planned)
    (tmp_path / "result.json").write_text('{"key": ')  # a truncated file is not a result
    assert bench.finished_result(spec) is None


def test_code_versions_decide_reuse_and_reports(tmp_path: Path) -> None:
    # The source hash follows the code, not its docstrings, comments or blank lines.
    source = tmp_path / "m.py"
    hashes = []
    for text in (
        '"""doc"""\ndef f():\n    """a"""\n    return 1  # c\n',
        '"""other"""\n\ndef f():\n    return 1\n',
        "def f():\n    return 2\n",
    ):
        source.write_text(text)
        hashes.append(bench.source_hash([source], tmp_path))
    assert hashes[0] == hashes[1] != hashes[2]
    # A run is reused only with the code version asked for; results without provenance are "unrecorded".
    committed = json.loads(EARLIER.read_text())
    spec = {**committed["key"], "run_dir": str(tmp_path)}
    new = {**committed, "provenance": {"code": "sb3-gpg 0.1.0 abc"}}
    (tmp_path / "result.json").write_text(json.dumps(new))
    assert bench.finished_result(spec, "sb3-gpg 0.1.0 abc") == new
    assert bench.finished_result(spec, "sb3-gpg 0.1.0 def") is None
    assert bench.finished_result(spec) == new
    assert bench.result_code(committed) == "unrecorded"
    assert bench.mixed_code([new, committed]) == {"gpg": ["sb3-gpg 0.1.0 abc", "unrecorded"]}
    assert bench.mixed_code([new, {**committed, "algo": "ppo"}]) == {}
    assert bench.code_version("ppo")["code"].startswith("stable-baselines3 ")
    assert bench.code_version("gpg")["code"].startswith("sb3-gpg ")


def test_algorithms_with_their_own_seeds_alternate(tmp_path: Path) -> None:
    args = bench.parse_args(["--tasks", "CartPole-v1", "--algo-seeds", "gpg=10-12", "--algo-seeds", "ppo=0,1", "--out", "x"])
    planned = bench.plan_runs(args, bench.resolve_tasks(args), tmp_path)
    assert [(p["algo"], p["seed"]) for p in planned] == [("gpg", 10), ("ppo", 0), ("gpg", 11), ("ppo", 1), ("gpg", 12)]
    assert planned[0]["run_dir"] == str(tmp_path / "runs" / "gpg" / "CartPole-v1" / "seed10")
    for bad in (["--algo-seeds", "gpg=ten"], ["--algo-seeds", "sac=1-2"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_equal_compute_runs_take_ppos_median_cpu_seconds(tmp_path: Path) -> None:
    # PPO's runs took 10, 30 and 20 training CPU seconds; GPG's ran 100 and 300 steps per CPU second: GPG trains again
    # for 20 CPU s, with a step budget of 20 s at its median rate (200 steps/s), in its own folder; the key holds it.
    args = bench.parse_args(["--tasks", "CartPole-v1", "--algo-seeds", "gpg=10,11", "--algo-seeds", "ppo=0-2", "--out", "x"])
    specs = bench.plan_runs(args, bench.resolve_tasks(args), tmp_path)
    assert bench.plan_equal_compute(specs, tmp_path) == []  # nothing finished yet
    rates, seconds = iter([100.0, 300.0]), iter([10.0, 30.0, 20.0])
    for spec in specs:
        result = {"key": bench.run_key(spec), "algo": spec["algo"], "train_cpu_s": 99.0, "steps_per_cpu_s": 1.0}
        result |= {"steps_per_cpu_s": next(rates)} if spec["algo"] == "gpg" else {"train_cpu_s": next(seconds)}
        Path(spec["run_dir"]).mkdir(parents=True)
        (Path(spec["run_dir"]) / "result.json").write_text(json.dumps(result))
    timed = bench.plan_equal_compute(specs, tmp_path)
    assert [(t["seed"], t["cpu_budget_s"], t["n_timesteps"], t["eval_freq"]) for t in timed] == [
        (10, 20.0, 4000, 200),
        (11, 20.0, 4000, 200),
    ]
    assert timed[0]["run_dir"] == str(tmp_path / "runs" / "gpg-equal-compute" / "CartPole-v1" / "seed10")
    assert bench.run_key(timed[0])["cpu_budget_s"] == 20.0 and "cpu_budget_s" not in bench.run_key(specs[0])
    # Runs made before CPU seconds were recorded give no CPU budget: the task waits for runs that have them.
    result = json.loads((Path(specs[1]["run_dir"]) / "result.json").read_text())
    (Path(specs[1]["run_dir"]) / "result.json").write_text(json.dumps({k: v for k, v in result.items() if k != "train_cpu_s"}))
    assert bench.plan_equal_compute(specs, tmp_path) == []
    # With --equal-compute such a run is made again; without, it is reused.
    assert bench.needs_run(specs[1], cpu=True) and not bench.needs_run(specs[1]) and not bench.needs_run(specs[0], cpu=True)
    with pytest.raises(SystemExit):
        bench.parse_args(["--equal-compute", "--vec-env", "subproc"])


def test_a_study_plans_its_variants_in_their_folders(tmp_path: Path) -> None:
    (tmp_path / "variant.yml").write_text("CartPole-v1:\n  n_envs: 4\n  baseline: knn\n  gamma: 0.9\ndefault:\n  n_envs: 1\n")
    study = tmp_path / "study.yml"
    study.write_text(
        "question: q\nrule: r\ntasks: {CartPole-v1: 2000, Acrobot-v1: null}\nseeds: [100, 101]\ncurve_episodes: 3\n"
        "variants:\n"
        "  ppo: {algo: ppo, tasks: [CartPole-v1]}\n"
        "  cand: {conf: variant.yml, unset: [baseline], set: {gamma: 0.95}, folder: sub/cand, seeds: [100], reference: ppo}\n"
    )
    args = bench.parse_args(["--study", str(study)])
    assert [v["name"] for v in args.variants] == ["ppo", "cand"] and args.algos == ["gpg", "ppo"]
    tasks = bench.resolve_tasks(args)
    assert [(t.env_id, t.n_timesteps) for t in tasks] == [("CartPole-v1", 2000), ("Acrobot-v1", 1_000_000)]
    specs = bench.plan_runs(args, tasks, tmp_path / "unused")
    # Task-major, the variants' seeds in turn; each in its variant's folder, with the study's evaluation options.
    assert [(s["env_id"], s["variant"], s["seed"]) for s in specs] == [
        ("CartPole-v1", "ppo", 100), ("CartPole-v1", "cand", 100), ("CartPole-v1", "ppo", 101), ("Acrobot-v1", "cand", 100)
    ]  # fmt: skip
    cand = specs[1]
    assert cand["run_dir"] == str(tmp_path / "sub" / "cand" / "runs" / "gpg" / "CartPole-v1" / "seed100")
    assert cand["config"]["values"] == {"n_envs": 4, "gamma": 0.95} and cand["curve_episodes"] == 3
    assert specs[-1]["config"]["entry"] == "default"  # variant.yml has no Acrobot-v1 entry: rl-zoo3's fallback
    assert specs[-1]["config"]["values"] == {"n_envs": 1, "gamma": 0.95}
    assert specs[0]["config"]["entry"] == "CartPole-v1" and specs[0]["eval_freq"] == 100
    narrowed = bench.parse_args(["--study", str(study), "--variants", "cand", "--tasks", "Acrobot-v1"])
    assert [(s["variant"], s["env_id"]) for s in bench.plan_runs(narrowed, bench.resolve_tasks(narrowed), tmp_path)] == [
        ("cand", "Acrobot-v1")
    ]
    for bad in (["--variants", "cand", "--seeds", "101"], ["--tasks", "Pendulum-v1"], ["--equal-compute"]):
        with pytest.raises(SystemExit):  # cand runs seed 100 only; not a task of the study; equal compute is GPG vs PPO
            bench.parse_args(["--study", str(study), *bad])
    with pytest.raises(SystemExit, match="no variant"):
        bench.parse_args(["--study", str(study), "--variants", "nope"])


def test_a_studys_report_by_hand(tmp_path: Path) -> None:
    study = tmp_path / "study.yml"
    study.write_text(
        "title: T\nquestion: Q\nrule: R\ntasks: {Acrobot-v1: 1000}\nseeds: [1, 2, 3]\nfloors: {Acrobot-v1: -500.0}\n"
        "columns: [gpg/returns_tied]\nvariants:\n  base: {}\n  new: {reference: base}\n"
    )
    finals = {"base": {1: -100.0, 2: -500.0}, "new": {1: -80.0, 2: -90.0, 3: -70.0}}
    args = bench.parse_args(["--study", str(study)])
    tasks = {t.env_id: t for t in bench.resolve_tasks(args)}  # Acrobot-v1: random -497.1
    found = {}
    for spec in bench.plan_runs(args, list(tasks.values()), tmp_path):
        if (final := finals[spec["variant"]].get(spec["seed"])) is not None:
            tied = {"gpg/returns_tied": 0.5 if spec["variant"] == "new" else 0.0}
            result = {"key": bench.run_key(spec), "final_mean": final, "log_means": tied}
            found[spec["variant"], spec["env_id"], spec["seed"]] = result | {"provenance": {"code": f"c-{spec['variant']}"}}
            bench.write_atomic(Path(spec["run_dir"]) / "result.json", found[spec["variant"], spec["env_id"], spec["seed"]])
    # A result of other settings left in a variant's folder is not reported.
    stray = tmp_path / "base" / "runs" / "gpg" / "Acrobot-v1" / "seed3" / "result.json"
    bench.write_atomic(stray, {"key": {}, "final_mean": 1e9})
    files = report.study_report(study, args.variants, tasks, found)
    rows = list(csv.DictReader(io.StringIO(files["report.csv"])))
    assert [r["variant"] for r in rows] == ["base", "new"] and rows[1]["seeds"] == "1-3"
    assert float(rows[1]["mean"]) == pytest.approx(-80.0) and float(rows[1]["worst"]) == -90.0
    # Normalized on the seeds both have (1, 2): new -85, base -300, random -497.1.
    assert float(rows[1]["normalized"]) == pytest.approx((-85.0 + 497.1) / (-300.0 + 497.1))
    assert (rows[0]["at floor"], rows[1]["at floor"], rows[1]["gpg/returns_tied"]) == ("1", "0", "0.5")
    assert rows[0]["code"] == "c-base" and "**Rule.** R" in files["report.md"] and files["report.md"].startswith("# T")
    # A sweep of some variants only still reports all of them.
    assert bench.sweep(bench.parse_args(["--study", str(study), "--variants", "new", "--report-only"])) == 0
    assert pd.read_csv(tmp_path / "report.csv")["variant"].tolist() == ["base", "new"]


def test_search_effort_counts_tuning_runs_and_optuna_trials(tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")

    def result(folder: str, algo: str, seed: int, config: str, steps: int, **extra) -> None:
        key = {"config": {"values": {"lr": config}}, **extra}
        data = {"algo": algo, "env_id": "CartPole-v1", "seed": seed, "n_timesteps": steps, "env_steps": steps, "key": key}
        bench.write_atomic(tmp_path / folder / "runs" / algo / f"seed{seed}" / "result.json", data)

    result("a", "gpg", 100, "x", 100)
    result("b", "gpg", 100, "x", 100)  # the same run kept in a second folder: counted once
    result("a", "gpg", 101, "y", 50)  # below the task's budget
    result("a", "gpg", 102, "y", 100, time_budget_s=5.0)  # a timed run is not at full budget
    result("a", "gpg", 5, "z", 100)  # a benchmark seed: not search
    result("a", "ppo", 100, "x", 100)
    (tmp_path / "a" / "runs" / "gpg" / "seed100" / "worker.log").write_text("training...\n")
    journal = str(tmp_path / "tuning" / "cartpole.log")
    (tmp_path / "tuning").mkdir()
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    study.set_user_attr("command", "python -m sb3_gpg.train --algo gpg --env CartPole-v1 --optimize -n 200 --n-evaluations 4")
    dist = {"lr": optuna.distributions.FloatDistribution(0.0, 1.0)}
    study.add_trial(optuna.trial.create_trial(params={"lr": 0.1}, distributions=dist, value=1.0))
    pruned = optuna.trial.create_trial(params={"lr": 0.2}, distributions=dist, state=optuna.trial.TrialState.PRUNED)
    study.add_trial(pruned)  # no evaluation reached: no steps
    pruned = {"params": {"lr": 0.3}, "distributions": dist, "state": optuna.trial.TrialState.PRUNED}
    study.add_trial(optuna.trial.create_trial(**pruned, intermediate_values={0: 1.0}))  # 1/4 of 200 steps
    rows = report.search_effort(tmp_path, [TASK])
    # gpg: 3 trials + configurations x, y; runs: 3 study runs + 3 trials; full budget: run x and the complete trial.
    assert rows == [["CartPole-v1", "gpg", 3, 5, 6, "0.0", 2, 2], ["CartPole-v1", "ppo", 0, 1, 1, "0.0", 1, 1]]
    assert report.search_effort(tmp_path, [bench.Task("CartPole-v1", 1_000_000, "t", 1, None, "t")])[0][-2:] == [0, 0]


def test_zoo_entries_conf_and_budgets(tmp_path: Path) -> None:
    path, key, entry = bench.zoo_entry("ppo", "CartPole-v1", {})
    assert path.name == "ppo.yml" and key == "CartPole-v1" and entry["n_steps"] == 32
    assert bench.zoo_entry("ppo", "HalfCheetah-v5", {})[1] == "HalfCheetah-v4"  # ppo.yml tunes -v4 only
    assert bench.zoo_entry("ppo", "NoSuchEnv-v3", {})[1] == "default"
    assert bench.zoo_entry("gpg", "CartPole-v1", {})[0].name == "gpg.yml"
    variant = tmp_path / "variant.yml"
    variant.write_text("Acrobot-v0:\n  n_envs: 2\nCartPole-v1:\n  n_envs: 4\n")
    args = bench.parse_args(
        ["--conf", f"gpg={variant}", "--tasks", "Acrobot-v1", "CartPole-v1", "--budget", "Acrobot-v1=2000"]
    )
    assert args.conf == {"gpg": str(variant)}
    specs = bench.plan_runs(args, tasks := bench.resolve_tasks(args), tmp_path)
    gpg = [s["config"] for s in specs if s["algo"] == "gpg"]
    assert gpg[0] == {"file": str(variant), "entry": "Acrobot-v0", "values": {"n_envs": 2}} and gpg[-1]["values"] == {
        "n_envs": 4
    }
    assert tasks[0].n_timesteps == 2000 and tasks[0].budget_source == "--budget (rl-zoo3 ppo.yml [Acrobot-v1]: 1000000)"
    assert tasks[1].n_timesteps == 100_000 and tasks[1].eval_freq == 5000 and tasks[1].random_score == 23.7
    for bad, message in (
        ("--budget=Acrobot-v1", "NAME=VALUE"),
        ("--budget=Acrobot-v1=0", ">= 1"),
        ("--budget=Pong=5", "not among"),
    ):
        with pytest.raises(SystemExit, match=message):
            bench.resolve_tasks(bench.parse_args(["--tasks", "Acrobot-v1", bad]))
    with pytest.raises(SystemExit):
        bench.parse_args(["--conf", "a2c=" + str(variant)])
    one_task = ["--conf", f"ppo:CartPole-v1={variant}", "--tasks", "Acrobot-v1", "CartPole-v1"]
    assert bench.zoo_entry("ppo", "CartPole-v1", bench.parse_args(one_task).conf)[2] == {"n_envs": 4}
    assert bench.zoo_entry("ppo", "Acrobot-v1", bench.parse_args(one_task).conf)[0].name == "ppo.yml"
    with pytest.raises(SystemExit):  # a task that is not run: most likely a typo
        bench.parse_args(["--conf", f"ppo:CartPole-v0={variant}", "--tasks", "CartPole-v1"])
    assert bench.parse_args(["--smoke"]).n_timesteps == 3000 and bench.parse_args([]).seeds == [0, 1, 2, 3, 4]


def test_timed_evaluation_splits_training_time() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", 2, seed=0), n_steps=64, batch_size=64, n_epochs=1, seed=0)
    timing = bench.TimedEvaluation(make_vec_env("CartPole-v1", 1, seed=1), eval_freq=200, n_episodes=2, budget=512)
    model.learn(512, callback=timing)
    assert [p["nominal"] for p in timing.curve] == [0, 200, 400] and [p["steps"] for p in timing.curve] == [0, 200, 400]
    assert [p["wall_s"] for p in timing.curve] == sorted(p["wall_s"] for p in timing.curve)
    parts = sum(timing.seconds[k] for k in ("rollout", "updates", "other"))
    assert parts == pytest.approx(timing.train_seconds, abs=1e-3) and timing.seconds["evaluation"] > 0
    assert min(timing.seconds.values()) > 0 and timing.curve[-1]["wall_s"] < timing.train_seconds
    assert 0 < timing.train_cpu_seconds < timing.train_seconds + timing.seconds["evaluation"] + 1.0
    # A CPU budget stops training once it is spent (the runs of equal compute), evaluations not counted.
    capped = bench.TimedEvaluation(make_vec_env("CartPole-v1", 1, seed=1), 10**9, 1, 10**6, cpu_budget=0.05)
    model.learn(100_000, callback=capped, reset_num_timesteps=True)
    assert model.num_timesteps < 100_000 and 0.05 <= capped.train_cpu_seconds < 5.0


@pytest.mark.slow
def test_smoke_sweep_resumes_without_redoing_finished_runs(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "cwd"
    elsewhere.mkdir()
    smoke = [sys.executable, str(SCRIPT), "--smoke", "--out", str(out), "--n-timesteps", "2000", "--curve-episodes", "3"]
    sweep = lambda *extra: subprocess.run([*smoke, *extra], cwd=elsewhere, capture_output=True, text=True, timeout=300)  # noqa: E731
    first = sweep("--algos", "gpg")  # an interrupted sweep: only the GPG run has finished
    assert first.returncode == 0 and "0 finished earlier (skipped), 1 to run" in first.stdout, first.stderr
    gpg_result = out / "runs" / "gpg" / "CartPole-v1" / "seed0" / "result.json"
    stamp = gpg_result.stat().st_mtime_ns
    second = sweep()
    assert second.returncode == 0 and "1 finished earlier (skipped), 1 to run" in second.stdout, second.stderr
    assert gpg_result.stat().st_mtime_ns == stamp and not list(elsewhere.iterdir())
    results = [json.loads(p.read_text()) for p in sorted(out.glob("runs/*/CartPole-v1/seed0/result.json"))]
    for result in results:
        assert result["env_steps"] >= 2000 and len(result["episode_returns"]) == 20
        assert result["final_mean"] == pytest.approx(np.mean(result["episode_returns"]))
        assert [p["nominal"] for p in result["curve"]] == [0, 1000, 2000, "final"]
        assert sum(result["time_s"].values()) == pytest.approx(result["train_wall_s"], rel=1e-3)
        assert 0 < result["train_cpu_s"] and result["steps_per_cpu_s"] == pytest.approx(
            result["env_steps"] / result["train_cpu_s"]
        )
        assert result["provenance"]["node"]["ray_node_id"] and result["log_curve"]["memory/rss_mib"][-1] > 0
        assert result["params"] > 0 and result["peak_rss_mib"] >= result["rss_imports_mib"] > 0
    by_algo = {r["algo"]: r for r in results}
    assert 0.0 <= by_algo["gpg"]["idle_fraction"] < 1.0 and by_algo["ppo"]["hyperparams"]["n_steps"] == "32"
    assert (out / "curves" / "CartPole-v1.png").read_bytes()[:4] == b"\x89PNG"
    results_csv = (out / "results.csv").read_text()
    history = json.loads((out / "history.json").read_text())  # both runs shown: a record each, with its seed
    assert sorted(r["algo"] for r in history.values()) == ["gpg", "ppo"] and all(r["finals"] for r in history.values())
    third = sweep("--report-only")
    assert third.returncode == 0 and (out / "results.csv").read_text() == results_csv
    assert json.loads((out / "history.json").read_text()) == history  # showing the same runs again is no new look


@pytest.mark.parametrize("study", sorted((REPO / "benchmarks").glob("*/study.yml")), ids=lambda p: p.parent.name)
def test_committed_studies_plan_and_report(study: Path) -> None:
    # Each study file of the repository loads, plans its runs in its variants' folders, and its report finds them.
    args = bench.parse_args(["--study", str(study)])
    tasks = bench.resolve_tasks(args)
    specs = bench.plan_runs(args, tasks, REPO / "unused")
    assert specs and all(Path(s["run_dir"]).is_relative_to(REPO / "benchmarks") for s in specs)
    # Every result.json in the study's folders was made with the study's settings.
    found = {(s["variant"], s["env_id"], s["seed"]): r for s in specs if (r := bench.finished_result(s)) is not None}
    assert len(found) == sum((Path(s["run_dir"]) / "result.json").exists() for s in specs)
    files = report.study_report(study, args.variants, {t.env_id: t for t in tasks}, found)
    table = pd.read_csv(io.StringIO(files["report.csv"]))
    assert set(zip(table["variant"], table["task"], strict=True)) == {key[:2] for key in found}
