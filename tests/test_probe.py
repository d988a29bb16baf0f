"""scripts/probe.py end to end on a tiny budget (slow tier: a subprocess that trains)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_probe_appends_one_json_line_per_run(tmp_path):
    out = tmp_path / "probes.jsonl"
    command = [sys.executable, str(REPO / "scripts" / "probe.py"), "--env", "Pendulum-v1", "--n-envs", "2"]
    command += ["--steps", "1200", "--eval-every", "400", "--eval-episodes", "1", "--final-episodes", "2", "--tag", "t"]
    command += ["--kw", "dict(group_size=2, n_groups=1, baseline='knn', learning_rate=lin(1e-3))", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(2):
        subprocess.run(command, check=True, env=env, cwd=tmp_path, timeout=300)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2 and records[0]["final"] == records[1]["final"], "seeded: the same result twice"
    record = records[0]
    assert record["tag"] == "t" and record["env"] == "Pendulum-v1" and record["steps"] >= 1200
    assert [point[0] for point in record["curve"]] == [400, 800, 1200]
    assert all(point[3] is not None for point in record["curve"]), "the policy's std is recorded"
    # Logger values of the updates, per evaluation period (the first rollout has no update before it).
    assert [summary["steps"] for summary in record["diagnostics"]] == [400, 800, 1200]
    assert {"approx_kl_mean", "clip_fraction_max", "advantage_std_mean"} <= set(record["diagnostics"][-1])
