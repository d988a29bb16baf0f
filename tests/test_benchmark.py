"""
``scripts/benchmark.py``: the smoke sweep and its resumption, the scaling mode, and the statistics.

The command-line tests run the script in subprocesses, from a temporary directory (not the
repository), into ``tmp_path``, with tiny budgets: together about a minute on two busy cores.
"""

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("rl_zoo3")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "benchmark.py"


def load_script() -> ModuleType:
    """Import ``scripts/benchmark.py`` as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("sb3_gpg_benchmark_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = load_script()


def run_script(args: list[str], cwd: Path, timeout: float = 150) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    process = subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert process.returncode == 0, f"exit {process.returncode}\nstdout:\n{process.stdout}\nstderr:\n{process.stderr}"
    return process


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


# ----------------------------------------------------------------------------- command line


def test_smoke_sweep_resumes_without_redoing_finished_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    smoke = ["--smoke", "--out", str(out), "--n-timesteps", "2000", "--curve-episodes", "3"]

    # An interrupted sweep: only the GPG run has finished.
    first = run_script([*smoke, "--algos", "gpg"], elsewhere)
    assert "0 finished earlier (skipped), 1 to run" in first.stdout
    gpg_result = out / "runs" / "gpg" / "CartPole-v1" / "seed0" / "result.json"
    stamp = gpg_result.stat().st_mtime_ns

    # The full smoke sweep (both algorithms) runs PPO only.
    second = run_script(smoke, elsewhere)
    assert "1 finished earlier (skipped), 1 to run" in second.stdout
    assert gpg_result.stat().st_mtime_ns == stamp
    assert "ppo CartPole-v1 seed 0: final" in second.stdout
    assert not list(elsewhere.iterdir()), "the script wrote into its working directory"

    results = json.loads((out / "results.json").read_text())
    assert sorted(r["algo"] for r in results) == ["gpg", "ppo"]
    for result in results:
        assert result["env_id"] == "CartPole-v1" and result["seed"] == 0
        assert result["env_steps"] >= 2000 and result["eval_episodes"] == 20 and len(result["episode_returns"]) == 20
        assert result["final_mean"] == pytest.approx(np.mean(result["episode_returns"]))
        assert result["curve"][0]["nominal"] == 0 and result["curve"][-1]["nominal"] == "final"
        assert result["threshold"] == 475.0
        assert result["params"] > 0 and result["peak_rss_mib"] >= result["rss_imports_mib"] > 0
        assert result["steps_per_s"] > 0 and result["train_wall_s"] > 0
        assert sum(result["time_s"].values()) == pytest.approx(result["train_wall_s"])
        assert min(result["time_s"][part] for part in ("env", "inference", "advantages", "updates")) > 0
    by_algo = {r["algo"]: r for r in results}
    assert 0.0 <= by_algo["gpg"]["idle_fraction"] < 1.0 and by_algo["ppo"]["idle_fraction"] is None
    assert by_algo["gpg"]["hyperparams_file"].endswith("gpg.yml") and by_algo["ppo"]["hyperparams_file"].endswith("ppo.yml")
    assert by_algo["ppo"]["hyperparams"]["n_steps"] == "32"  # rl-zoo3's tuned CartPole-v1 entry

    rows = read_csv(out / "results.csv")
    assert len(rows) == 2 and all(float(row["final_mean"]) == by_algo[row["algo"]]["final_mean"] for row in rows)
    curve_rows = read_csv(out / "curves.csv")
    assert {row["algo"] for row in curve_rows} == {"gpg", "ppo"} and all(float(row["steps"]) >= 0 for row in curve_rows)

    aggregate = json.loads((out / "aggregate.json").read_text())
    for metric in ("final", "auc"):
        assert set(aggregate["iqm"][metric]) == {"gpg", "ppo"}
        point, low, high = aggregate["probability_of_improvement"][metric]["gpg>ppo"]
        assert 0.0 <= low <= point <= high <= 1.0

    markdown = (out / "benchmark.md").read_text()
    assert "|algo|env_id|mean_reward|std_reward|n_timesteps|eval_timesteps|eval_episodes|" in markdown
    assert "|gpg|CartPole-v1|" in markdown and "|ppo|CartPole-v1|" in markdown
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "curves" / "CartPole-v1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Everything finished: nothing runs again, the reports are rewritten from the results.
    third = run_script(smoke, elsewhere)
    assert "2 finished earlier (skipped), 0 to run" in third.stdout
    assert gpg_result.stat().st_mtime_ns == stamp
    assert json.loads((out / "results.json").read_text()) == results


def test_scaling_mode(tmp_path: Path) -> None:
    out = tmp_path / "scaling"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    run_script(["--scaling", "--smoke", "--out", str(out), "--scaling-n-envs", "1", "2", "--scaling-steps", "256"], elsewhere)
    rows = read_csv(out / "scaling.csv")
    assert [(row["vec_env"], int(row["n_envs"])) for row in rows] == [
        ("dummy", 1),
        ("dummy", 2),
        ("subproc", 1),
        ("subproc", 2),
    ]
    for row in rows:
        for column in ("random_steps_per_s", "gpg_steps_per_s", "ppo_steps_per_s"):
            assert float(row[column]) > 0
        assert int(row["gpg_env_steps"]) >= 256 and int(row["ppo_env_steps"]) >= 256
    table = (out / "scaling.md").read_text()
    assert table.count("\n|dummy|") == 2 and table.count("\n|subproc|") == 2
    assert not list(elsewhere.iterdir())


# ----------------------------------------------------------------------------- statistics and helpers


def test_interquartile_mean() -> None:
    assert bench.interquartile_mean(np.arange(1, 9)) == pytest.approx(4.5)  # drops 1, 2 and 7, 8
    assert bench.interquartile_mean(np.array([[10.0, 0.0], [1.0, 2.0]])) == pytest.approx(1.5)
    assert bench.interquartile_mean(np.array([3.0])) == 3.0
    assert bench.interquartile_mean(np.array([1.0, 2.0, 100.0])) == pytest.approx(103.0 / 3)  # fewer than 4: no cut
    assert np.isnan(bench.interquartile_mean(np.array([])))


def test_probability_of_improvement() -> None:
    # Pairs (1, 0) (1, 2) (2, 0) (2, 2): 1 + 0 + 1 + 0.5 out of 4.
    assert bench.probability_of_improvement({"a": [1.0, 2.0]}, {"a": [0.0, 2.0]}) == pytest.approx(0.625)
    # Averaged over tasks; a task only one side has is ignored.
    x = {"a": [1.0, 2.0], "b": [5.0], "c": [9.0]}
    y = {"a": [0.0, 2.0], "b": [6.0]}
    assert bench.probability_of_improvement(x, y) == pytest.approx((0.625 + 0.0) / 2)
    assert bench.probability_of_improvement(y, x) == pytest.approx((0.375 + 1.0) / 2)
    assert np.isnan(bench.probability_of_improvement({"a": [1.0]}, {"b": [1.0]}))


def test_stratified_bootstrap() -> None:
    def iqm(sample: dict) -> float:
        return bench.interquartile_mean(np.concatenate(list(sample.values())))

    # Stratified: every resample keeps three runs of each task, so this IQM never changes
    # (resampling the six runs together would give 0.0 or 1.0 at times).
    point, low, high = bench.stratified_bootstrap(iqm, [{"a": [0.0, 0.0, 0.0], "b": [1.0, 1.0, 1.0]}], reps=300)
    assert point == low == high == pytest.approx(0.5)
    # One run per task: no spread.
    assert bench.stratified_bootstrap(iqm, [{"a": [2.0]}], reps=50) == (2.0, 2.0, 2.0)
    # A real spread: the interval holds the estimate, narrows with more runs, and is reproducible.
    rng = np.random.default_rng(0)
    small = {"a": rng.normal(size=10), "b": rng.normal(size=10)}
    large = {"a": rng.normal(size=400), "b": rng.normal(size=400)}
    point, low, high = bench.stratified_bootstrap(iqm, [small], reps=500)
    assert low < point < high
    _, large_low, large_high = bench.stratified_bootstrap(iqm, [large], reps=500)
    assert large_low < 0.0 < large_high and large_high - large_low < high - low
    assert bench.stratified_bootstrap(iqm, [small], reps=500) == (point, low, high)
    # Two sample sets, resampled independently.
    x, y = {"a": np.array([1.0, 3.0])}, {"a": np.array([2.0, 2.0])}
    point, low, high = bench.stratified_bootstrap(bench.probability_of_improvement, [x, y], reps=500)
    assert point == 0.5 and low == 0.0 and high == 1.0


def test_curve_area_and_threshold_crossing() -> None:
    assert bench.curve_area([0, 50, 100], [7.0, 7.0, 7.0], 100) == pytest.approx(7.0)
    assert bench.curve_area([0, 100], [0.0, 1.0], 100) == pytest.approx(0.5)
    # Flat before the first evaluation; a point past the budget sets the value at the budget.
    assert bench.curve_area([50, 200], [2.0, 5.0], 100) == pytest.approx((50 * 2.0 + 50 * (2.0 + 3.0) / 2) / 100)
    assert np.isnan(bench.curve_area([], [], 100))
    curve = [{"steps": 0, "mean": 1.0}, {"steps": 10, "mean": 5.0}, {"steps": 20, "mean": 9.0}]
    assert bench.first_crossing(curve, 5.0) == {"steps": 10, "mean": 5.0}
    assert bench.first_crossing(curve, 10.0) is None and bench.first_crossing(curve, None) is None


def test_zoo_entries_and_budgets() -> None:
    path, key, entry = bench.zoo_entry("ppo", "CartPole-v1")
    assert path.name == "ppo.yml" and key == "CartPole-v1" and entry["n_steps"] == 32
    # ppo.yml tunes HalfCheetah-v4, not -v5: the older version's entry is used.
    _, key, entry = bench.zoo_entry("ppo", "HalfCheetah-v5")
    assert key == "HalfCheetah-v4" and entry["normalize"] is True
    _, key, _ = bench.zoo_entry("ppo", "NoSuchEnv-v3")
    assert key == "default"
    path, key, _ = bench.zoo_entry("gpg", "CartPole-v1")
    assert path == REPO / "hyperparams" / "gpg.yml" and key == "CartPole-v1"

    args = bench.parse_args(["--tasks", "CartPole-v1", "Pendulum-v1", "--budget-scale", "0.5"])
    tasks = bench.resolve_tasks(args)
    assert [t.n_timesteps for t in tasks] == [50_000, 50_000] and [t.eval_freq for t in tasks] == [2500, 2500]
    assert [t.threshold for t in tasks] == [475.0, -200.0]  # the env spec's, then EXTRA_THRESHOLDS
    assert bench.normalized(475.0, tasks[0]) == pytest.approx(1.0)
    assert bench.normalized(bench.RANDOM_SCORES["Pendulum-v1"], tasks[1]) == pytest.approx(0.0)
    smoke = bench.parse_args(["--smoke"])
    assert smoke.tasks == ["CartPole-v1"] and smoke.seeds == [0] and smoke.algos == ["gpg", "ppo"]
    assert bench.parse_args([]).seeds == [0, 1, 2, 3, 4] and bench.parse_args([]).tasks == list(bench.DEFAULT_TASKS)


def test_budget_shortens_one_task_and_says_so() -> None:
    args = bench.parse_args(["--tasks", "CartPole-v1", "Pendulum-v1", "--budget", "Pendulum-v1=20000"])
    cartpole, pendulum = bench.resolve_tasks(args)
    assert cartpole.n_timesteps == 100_000 and cartpole.budget_source == "rl-zoo3 ppo.yml [CartPole-v1]"
    assert pendulum.n_timesteps == 20_000 and pendulum.eval_freq == 1000
    assert pendulum.budget_source == "--budget (rl-zoo3 ppo.yml [Pendulum-v1]: 100000)"
    for bad, message in (
        ("Pendulum-v1", "ENV=VALUE"),
        ("Pendulum-v1=1e4x", "ENV=VALUE"),
        ("Pendulum-v1=0", ">= 1"),
        ("Acrobot-v1=5", "not among --tasks"),
    ):
        with pytest.raises(SystemExit, match=message):
            bench.resolve_tasks(bench.parse_args(["--tasks", "CartPole-v1", "Pendulum-v1", "--budget", bad]))


def test_target_comparison_by_hand() -> None:
    task = bench.Task("CartPole-v1", 100, "test", 50, 475.0, "test", 20.0)

    def run(algo: str, seed: int, final: float, curve: list[tuple[float, float]], wall: float, rate: float) -> dict:
        points = [{"steps": 0, "wall_s": w, "mean": m} for w, m in curve]
        return {
            "algo": algo,
            "env_id": "CartPole-v1",
            "seed": seed,
            "final_mean": final,
            "curve": points,
            "train_wall_s": wall,
            "steps_per_s": rate,
            "params": 50 if algo == "gpg" else 100,
            "peak_rss_mib": 300.0 if algo == "gpg" else 400.0,
        }

    results = [
        run("ppo", 0, 100.0, [(0.0, 10.0), (10.0, 100.0)], 10.0, 1000.0),
        run("ppo", 1, 200.0, [(0.0, 10.0), (30.0, 200.0)], 30.0, 1000.0),
        # PPO's final return is 150: GPG seed 0 reaches it at 2 s, seed 1 at 6 s, seed 2 never.
        run("gpg", 0, 160.0, [(0.0, 10.0), (2.0, 150.0), (4.0, 160.0)], 4.0, 3000.0),
        run("gpg", 1, 170.0, [(0.0, 10.0), (3.0, 149.0), (6.0, 170.0)], 6.0, 2000.0),
        run("gpg", 2, 100.0, [(0.0, 10.0), (5.0, 100.0)], 5.0, 1000.0),
    ]
    (row,) = bench.target_comparison(results, [task])
    assert row["ppo_final"] == pytest.approx(150.0) and row["ppo_wall"] == pytest.approx(20.0)
    assert row["gpg_wall_to_ppo_final"] == pytest.approx(6.0) and row["gpg_seeds_reaching_ppo_final"] == 2
    assert row["wall_ratio"] == pytest.approx(0.3)
    assert row["steps_per_s_ratio"] == pytest.approx(2.0) and row["params_ratio"] == pytest.approx(0.5)
    assert row["peak_rss_ratio"] == pytest.approx(0.75)
    assert row["final_iqm_gpg"] == pytest.approx(bench.interquartile_mean(np.array([160.0, 170.0, 100.0])))
    # Two of three seeds never getting there: the median is "not reached".
    results[3]["curve"][-1]["mean"] = 140.0
    (row,) = bench.target_comparison(results, [task])
    assert row["gpg_wall_to_ppo_final"] is None and row["wall_ratio"] is None
    # A task without runs of both algorithms is left out.
    assert bench.target_comparison([r for r in results if r["algo"] == "gpg"], [task]) == []


def test_finished_result_requires_same_settings(tmp_path: Path) -> None:
    args = bench.parse_args(["--smoke"])
    spec = bench.plan_runs(args, bench.resolve_tasks(args), tmp_path)[0]
    result_file = Path(spec["run_dir"]) / "result.json"
    assert bench.finished_result(spec) is None
    bench.write_json_atomic(result_file, {"key": bench.run_key(spec), "final_mean": 1.0})
    assert bench.finished_result(spec) == {"key": bench.run_key(spec), "final_mean": 1.0}
    assert bench.finished_result({**spec, "eval_episodes": spec["eval_episodes"] + 1}) is None
    # An edited configuration entry (hyperparams/gpg.yml tuned since) makes the run stale too.
    edited = {**spec["config"], "values": {**spec["config"]["values"], "learning_rate": 0.5}}
    assert bench.finished_result({**spec, "config": edited}) is None
    # The same entry read from another checkout (a fresh clone, another venv) is the same run,
    # also for result files that stored the path.
    moved = {**spec["config"], "file": "/elsewhere/hyperparams/gpg.yml"}
    assert bench.finished_result({**spec, "config": moved}) is not None
    bench.write_json_atomic(result_file, {"key": {**bench.run_key(spec), "config": spec["config"]}, "final_mean": 1.0})
    assert bench.finished_result({**spec, "config": moved}) is not None
    assert bench.finished_result({**spec, "config": {**edited, "file": moved["file"]}}) is None
    result_file.write_text('{"key": ')  # a truncated file is not a result
    assert bench.finished_result(spec) is None


def test_run_jobs_runs_everything_and_reports_exit_codes(tmp_path: Path) -> None:
    jobs = [
        bench.Job(
            f"job{i}", [sys.executable, "-c", f"print('out {i}'); raise SystemExit({i % 2})"], tmp_path / f"{i}.log", tmp_path
        )
        for i in range(5)
    ]
    finished: dict[str, int] = {}
    bench.run_jobs(jobs, 2, lambda job, code: finished.__setitem__(job.name, code))
    assert finished == {f"job{i}": i % 2 for i in range(5)}
    assert all((tmp_path / f"{i}.log").read_text().strip() == f"out {i}" for i in range(5))


def test_timers_measure_wrapped_methods() -> None:
    class Thing:
        def work(self, x: int) -> int:
            return 2 * x

    thing = Thing()
    timers = bench.Timers()
    timers.wrap(thing, "work", "work")
    assert thing.work(3) == 6 and thing.work(4) == 8
    assert timers.calls["work"] == 2 and timers.totals["work"] > 0
    assert Thing().work(1) == 2  # other instances are untouched
    split = bench.time_split(timers, 10.0)
    assert split["other"] == pytest.approx(10.0) and sum(split.values()) == pytest.approx(10.0)
