"""scripts/probe.py: its ``--kw`` values and period summaries by hand; (slow) a probe end to end through the benchmark."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.scripts import load_script

pytest.importorskip("rl_zoo3")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def probe():
    return load_script("probe")


def test_kw_values_are_python_literals_else_strings(probe):
    items = ["n_envs=2", "learning_rate=3e-4", "normalize=True", "net=[64, 64]", "baseline_kwargs={'n_neighbors': 4}"]
    items += ["clip_range=lin_0.2", "policy_kwargs=dict(activation_fn=nn.ReLU)", "baseline=knn"]
    assert probe.parse_kw(items) == {
        "n_envs": 2, "learning_rate": 3e-4, "normalize": True, "net": [64, 64], "baseline_kwargs": {"n_neighbors": 4},
        "clip_range": "lin_0.2", "policy_kwargs": "dict(activation_fn=nn.ReLU)", "baseline": "knn",
    }  # fmt: skip
    with pytest.raises(SystemExit, match="--kw takes NAME=VALUE"):
        probe.parse_kw(["n_envs"])


def test_period_summaries_by_hand(probe):
    # Rollouts end at 100, 200, 300 and 400 steps; evaluations at 0, 200 and 400. The rollout ending at 200 ran the
    # evaluation at 200 before its end was logged: it belongs to the period of the evaluation at 400.
    rows = [
        {"time/total_timesteps": "100", "gpg/advantage_std": "1.0", "train/approx_kl": ""},
        {"time/total_timesteps": "200", "gpg/advantage_std": "3.0", "train/approx_kl": "0.01"},
        {"time/total_timesteps": "300", "gpg/advantage_std": "nan", "train/approx_kl": "0.03"},
        {"time/total_timesteps": "400", "gpg/advantage_std": "5.0", "train/approx_kl": "0.02"},
    ]
    assert probe.period_summaries([0, 200, 400], rows) == [
        {"steps": 0},
        {"steps": 200, "advantage_std_mean": 1.0, "advantage_std_max": 1.0},
        {"steps": 400, "approx_kl_mean": 0.02, "approx_kl_max": 0.03, "advantage_std_mean": 3.0, "advantage_std_max": 3.0},
    ]


@pytest.mark.slow
def test_probe_runs_the_benchmark_and_appends_one_line_per_call(tmp_path):
    out, runs = tmp_path / "probes.jsonl", tmp_path / "runs"
    command = [sys.executable, str(REPO / "scripts" / "probe.py"), "--env", "Pendulum-v1", "--tag", "t", "--seed", "100"]
    command += ["--steps", "1200", "--eval-every", "400", "--eval-episodes", "1", "--final-episodes", "2"]
    command += ["--kw", "n_envs=2", "--kw", "group_size=2", "--kw", "n_groups=1", "--kw", "learning_rate=lin_1e-3"]
    command += ["--runs", str(runs), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(2):  # the second call reuses the finished run
        subprocess.run(command, check=True, env=env, cwd=tmp_path, timeout=300)
    first, second = [json.loads(line) for line in out.read_text().splitlines()]
    assert first == second
    assert first["tag"] == "t" and first["env"] == "Pendulum-v1" and first["seed"] == 100 and first["steps"] >= 1200
    assert first["kw"] == {"n_envs": 2, "group_size": 2, "n_groups": 1, "learning_rate": "lin_1e-3"}
    entry = yaml.safe_load((runs / "Pendulum-v1" / "t" / "gpg.yml").read_text())["Pendulum-v1"]
    assert entry == first["config"] and entry["group_size"] == 2 and entry["gamma"] == 0.91, "gpg.yml's entry, changed"
    run_dir = runs / "Pendulum-v1" / "t" / "runs" / "gpg" / "Pendulum-v1" / "seed100"
    result = json.loads((run_dir / "result.json").read_text())
    assert first["final"] == result["final_mean"] and result["eval_episodes"] == 2
    assert [point[0] for point in first["curve"]] == [0, 400, 800, 1200]
    # Logged values of the rollouts, per evaluation period (the first rollout has no update before it).
    assert [summary["steps"] for summary in first["diagnostics"]] == [0, 400, 800, 1200]
    assert set(first["diagnostics"][2]) == {"steps", "advantage_std_mean", "advantage_std_max"}
    assert {"approx_kl_mean", "clip_fraction_max", "std_mean", "advantage_std_mean"} <= set(first["diagnostics"][-1])
    with open(run_dir / "progress.csv", newline="") as file:
        assert len(list(csv.DictReader(file))) == 3, "one row per rollout of 400 steps"
    assert (run_dir / "diagnostics.jsonl").read_text().count("\n") == 3, "--diagnostics: one line per rollout"
