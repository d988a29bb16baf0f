"""
A hand-tuning probe: one benchmark run of a task's GPG entry with some values changed, summarised as one JSON line.

The probe writes the task's entry (from ``hyperparams/gpg.yml`` or ``--conf``) with the ``--kw`` values into
``<runs>/<env>/<tag>/gpg.yml`` and trains it with ``scripts/benchmark.py --conf gpg=... --diagnostics`` into that
folder (rl-zoo3, one process, resumable; the run's ``diagnostics.jsonl`` is read with ``scripts/diagnostics.py``).
It then appends to ``--out`` the final return, the evaluation curve and, for each evaluation period, the mean and
maximum of the logged ``train/approx_kl``, ``train/clip_fraction``, ``train/entropy_loss``, ``train/std`` and
``gpg/advantage_std`` of its rollouts (the run's ``progress.csv``). Probes run on seeds the benchmark never uses
(100 and up); the settings that win go into ``hyperparams/gpg.yml`` and through the benchmark. Usage::

    python scripts/probe.py --env HalfCheetah-v5 --seed 100 --tag mes200 --kw max_episode_steps=200 \\
        --kw learning_rate=lin_3e-4 --kw "policy_kwargs=dict(log_std_init=-2, activation_fn=nn.ReLU)"

``--kw KEY=VALUE`` sets a value of the entry as rl-zoo3 reads it: a Python literal (``200``, ``3e-4``, ``True``,
``[64, 64]``), else the string as given (``lin_3e-4``; ``policy_kwargs`` as a ``dict(...)`` string).
"""

import argparse
import ast
import csv
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from benchmark import parse_pairs, zoo_entry  # scripts/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parent.parent
#: Logged values summarised per evaluation period (those of the update before each rollout, and of the rollout).
LOGGED = ("train/approx_kl", "train/clip_fraction", "train/entropy_loss", "train/std", "gpg/advantage_std")


def parse_kw(items: Sequence[str] | None) -> dict[str, Any]:
    """
    The entry's values given as ``KEY=VALUE``: a Python literal, else the string.

    :param items: ``--kw`` as given
    :return: the values by key
    """
    values = parse_pairs(items, "--kw", str)
    for key, text in values.items():
        try:
            values[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            pass  # a string: a schedule (lin_3e-4), policy_kwargs...
    return values


def period_summaries(curve_steps: Sequence[int], rows: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
    """
    Mean and maximum of :data:`LOGGED` over the rollouts of each evaluation period.

    A rollout ending at ``T`` env steps (``time/total_timesteps``) belongs to the first evaluation at more than ``T``
    steps: the evaluations run within rollouts, before the rollout's end is logged.

    :param curve_steps: env steps of the evaluations, in order
    :param rows: the rows of ``progress.csv`` (one per rollout)
    :return: one ``{"steps": ..., "<name>_mean": ..., "<name>_max": ...}`` per evaluation (``name``: the key's last part)
    """
    summaries, start = [], -1
    for steps in curve_steps:
        window = [row for row in rows if start <= float(row["time/total_timesteps"]) < steps]
        summary: dict[str, Any] = {"steps": steps}
        for key in LOGGED:
            values = [float(row[key]) for row in window if row.get(key)]
            values = [value for value in values if np.isfinite(value)]
            if values:
                name = key.split("/")[1]
                summary |= {f"{name}_mean": round(float(np.mean(values)), 5), f"{name}_max": round(max(values), 5)}
        summaries.append(summary)
        start = steps
    return summaries


def probe_record(run_dir: Path, tag: str, kw: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """
    The probe's line, from the benchmark run's ``result.json`` and ``progress.csv``.

    :param run_dir: the run's folder
    :param tag: the probe's name
    :param kw: the values changed (``--kw``)
    :param config: the entry the run trained
    :return: task, seed, values, final return, curve (env steps, mean return, training seconds), period summaries
    """
    result = json.loads((run_dir / "result.json").read_text())
    with open(run_dir / "progress.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    curve = [point for point in result["curve"] if point["nominal"] != "final"]
    return {
        "tag": tag, "env": result["env_id"], "seed": result["seed"], "runner": "scripts/probe.py (scripts/benchmark.py)",
        "n_envs": config.get("n_envs", 1), "kw": kw, "config": config, "final": result["final_mean"],
        "curve": [[point["steps"], round(point["mean"], 1), round(point["wall_s"], 1)] for point in curve],
        "diagnostics": period_summaries([point["steps"] for point in curve], rows),
        "train_s": round(result["train_wall_s"], 1), "steps": result["env_steps"],
        "run": str(run_dir.relative_to(ROOT) if run_dir.is_relative_to(ROOT) else run_dir),
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--env", default="HalfCheetah-v5")
    add("--seed", type=int, default=100)
    add("--kw", action="append", metavar="KEY=VALUE", help="a value of the entry; repeatable")
    add("--tag", default="probe", help="the probe's name (its folder under --runs/<env>)")
    add("--steps", type=float, default=1e6, help="env-step budget")
    add("--eval-every", type=float, default=1e5, help="env steps between evaluations")
    add("--eval-episodes", type=int, default=5, help="episodes of each evaluation")
    add("--final-episodes", type=int, default=10, help="episodes of the final evaluation")
    add("--conf", type=Path, help="GPG's configuration file the entry comes from (default: hyperparams/gpg.yml)")
    add("--runs", type=Path, default=ROOT / "benchmarks" / "probes" / "runs", help="folder of the probes' runs")
    add("--out", type=Path, default=ROOT / "benchmarks" / "probes" / "probes.jsonl", help="file the line is appended to")
    args = parser.parse_args(argv)
    kw = parse_kw(args.kw)
    _, _, entry = zoo_entry("gpg", args.env, {"gpg": str(args.conf)} if args.conf else {})
    config, folder = {**entry, **kw}, (args.runs / args.env / args.tag).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gpg.yml").write_text(yaml.safe_dump({args.env: config}, sort_keys=False))
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--algos", "gpg", "--conf", f"gpg={folder}/gpg.yml"]
    command += ["--tasks", args.env, "--seeds", str(args.seed), "--n-timesteps", str(int(args.steps)), "--diagnostics"]
    command += ["--eval-freq", str(int(args.eval_every)), "--curve-episodes", str(args.eval_episodes)]
    command += ["--eval-episodes", str(args.final_episodes), "--out", str(folder)]
    if status := subprocess.call(command):
        return status
    record = probe_record(folder / "runs" / "gpg" / args.env / f"seed{args.seed}", args.tag, kw, config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as file:  # one line per probe, appended in one write
        file.write(json.dumps(record) + "\n")
    print("final", record["final"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
