"""
Defaults study: ``GPG("MlpPolicy", env)`` against ``PPO("MlpPolicy", env)`` where nobody chose a setting.

Each algorithm runs with its constructor's defaults on a suite of tasks, with the env passed as a user
passes it: one env, and 8 envs through ``make_vec_env`` (rl-zoo3 builds both; an entry that names only
``policy`` and ``n_envs`` is the constructor's defaults, and rl-zoo3's own ``default`` entry for PPO is
the one-env case). Budgets: 300k env steps, or rl-zoo3's PPO budget where it is smaller. The runs go
through ``scripts/benchmark.py`` (one process each, resumable per run, the code version recorded) into
``benchmarks/defaults/<variant>/<setup>/`` for GPG and ``benchmarks/defaults/ppo/<setup>/`` for PPO.
A GPG variant adds keyword arguments to the defaults (``--variant NAME --gpg-kwargs "dict(...)"``),
to measure a candidate default before it enters the code; ``--variant defaults`` is the code as it is.

The report (``report.md``/``report.csv`` in the variant's folder) gives per task and setup the mean
final return of each algorithm over the seeds, each seed's value, and GPG's normalized score
(random 0, PPO 1): the target is >= 1 on every task and setup.

Usage::

    python scripts/defaults_study.py --algos ppo                        # PPO's side (independent of GPG's code)
    python scripts/defaults_study.py --algos gpg                        # GPG's defaults as the code has them
    python scripts/defaults_study.py --algos gpg --variant cap --gpg-kwargs "dict(max_episode_steps=200)"
    python scripts/defaults_study.py --report-only [--variant NAME]
"""

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from bench_report import markdown  # scripts/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "defaults"
#: The development suite and its budgets: 300k env steps, or rl-zoo3's PPO budget where it is smaller.
SUITE = {
    "CartPole-v1": 100_000,
    "Acrobot-v1": 300_000,
    "Pendulum-v1": 100_000,
    "LunarLanderContinuous-v3": 300_000,
    "MountainCarContinuous-v0": 20_000,
    "BipedalWalker-v3": 300_000,
    "HalfCheetah-v5": 300_000,
    "Hopper-v5": 300_000,
    "Walker2d-v5": 300_000,
    "Ant-v5": 300_000,
    "InvertedPendulum-v5": 300_000,
}
SETUPS = {"1env": 1, "8envs": 8}
SEEDS = (100, 101, 102)


def entry(n_envs: int, n_timesteps: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """An rl-zoo3 entry that is the constructor's defaults (plus ``extra``) with ``n_envs`` envs."""
    return {"policy": "MlpPolicy", "n_envs": n_envs, "n_timesteps": float(n_timesteps), **(extra or {})}


def run(algo: str, folder: Path, setup: str, args: argparse.Namespace, extra: dict[str, Any] | None) -> int:
    """
    Write the setup's configuration and run (or resume, or with ``--report-only`` report) its runs.

    :return: the benchmark's exit status
    """
    conf = folder / f"{algo}.yml"
    wanted = {"default": entry(SETUPS[setup], 300_000, extra)}
    if conf.exists() and (written := yaml.safe_load(conf.read_text())) != wanted:
        raise SystemExit(
            f"{conf} holds {written['default']}, not {wanted['default']}: this variant ran with other GPG arguments. "
            "Pass the same --gpg-kwargs as its first run (with --report-only too), or name another --variant."
        )
    folder.mkdir(parents=True, exist_ok=True)
    conf.write_text(yaml.safe_dump(wanted, sort_keys=False))
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--algos", algo, "--conf", f"{algo}={conf}"]
    command += ["--out", str(folder), "--tasks", *args.tasks, "--seeds", *map(str, args.seeds)]
    command += ["--curve-episodes", str(args.curve_episodes)]
    command += [arg for task in args.tasks for arg in ("--budget", f"{task}={SUITE[task]}")]
    return subprocess.call(command + (["--report-only"] if args.report_only else []))


def load(folder: Path) -> pd.DataFrame:
    """The finished runs under a folder (``runs/<algo>/<env>/seed<N>/result.json``): env, seed and final return."""
    columns = ["env_id", "seed", "final_mean"]
    rows = [json.loads(path.read_text()) for path in sorted(folder.glob("runs/*/*/seed*/result.json"))]
    return pd.DataFrame([{k: r[k] for k in columns} for r in rows], columns=columns)


def parse_kwargs(text: str) -> dict[str, Any]:
    """``"dict(a=1, b='x')"`` -> ``{"a": 1, "b": "x"}`` (literal values only)."""
    call = ast.parse(text.strip(), mode="eval").body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "dict" and not call.args):
        raise ValueError(f"expected dict(name=value, ...), got {text!r}")
    return {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords if keyword.arg}


def random_scores(out: Path) -> dict[str, float]:
    """Mean return of uniformly random actions per task (``benchmark.random_score``, 20 episodes), cached in ``out``."""
    from benchmark import RANDOM_SCORES, random_score, write_atomic

    cache = out / "random_scores.json"
    scores = json.loads(cache.read_text()) if cache.exists() else {}
    missing = {t: RANDOM_SCORES.get(t) or random_score(t, 20) for t in SUITE if t not in scores}
    if missing:
        write_atomic(cache, {**scores, **missing})
    return {**scores, **missing}


def report(out: Path, variant: str, random_scores: dict[str, float]) -> pd.DataFrame:
    """
    Per task and setup: each algorithm's mean final return over the seeds both finished (all of each one's while they
    have none in common) and each seed's, and GPG's normalized score.

    :param out: the study's folder
    :param variant: GPG's variant
    :param random_scores: mean return of uniformly random actions per task
    :return: the table (also written as ``report.csv`` and ``report.md`` in the variant's folder)
    """
    rows = []
    for setup in SETUPS:
        gpg, ppo = load(out / variant / setup), load(out / "ppo" / setup)
        for task in SUITE:
            g = gpg[gpg.env_id == task].sort_values("seed")
            p = ppo[ppo.env_id == task].sort_values("seed")
            if g.empty and p.empty:
                continue
            if common := sorted(set(g.seed) & set(p.seed)):  # compare on the same seeds while a sweep is partial
                g, p = g[g.seed.isin(common)], p[p.seed.isin(common)]
            random = random_scores.get(task, np.nan)
            g_mean, p_mean = g.final_mean.mean(), p.final_mean.mean()
            normalized = (g_mean - random) / (p_mean - random) if p_mean != random else np.nan
            rows.append(
                {
                    "env_id": task,
                    "setup": setup,
                    "gpg_mean": g_mean,
                    "ppo_mean": p_mean,
                    "random": random,
                    "normalized": normalized,
                    "seeds": " ".join(map(str, common)) or "-",
                    "gpg_seeds": " ".join(f"{v:.0f}" for v in g.final_mean),
                    "ppo_seeds": " ".join(f"{v:.0f}" for v in p.final_mean),
                }
            )
    table = pd.DataFrame(rows)
    folder = out / variant
    table.to_csv(folder / "report.csv", index=False)
    met = table.dropna(subset=["normalized"])
    lines = [
        f"# Defaults study: GPG `{variant}` against PPO's defaults",
        "",
        "Mean final return over the seeds both algorithms finished (20 deterministic episodes per run; each seed's",
        "value in `gpg_seeds` and `ppo_seeds`); `normalized`: random 0, PPO 1.",
        f"GPG at least PPO on {int((met.normalized >= 1).sum())} of {len(met)} task-setups.",
        "",
        markdown(table.round({"gpg_mean": 1, "ppo_mean": 1, "random": 1, "normalized": 2})),
    ]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(SUITE), choices=list(SUITE))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--algos", nargs="+", default=["gpg", "ppo"], choices=["gpg", "ppo"])
    parser.add_argument("--variant", default="defaults", help="name of GPG's variant (default: the code's defaults)")
    parser.add_argument("--gpg-kwargs", default="dict()", help='GPG arguments added to its defaults, e.g. "dict(gamma=0.99)"')
    parser.add_argument(
        "--curve-episodes",
        type=int,
        default=3,
        help="episodes of each periodic evaluation (default: 3; the study uses only the final 20-episode one)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report-only", action="store_true", help="rewrite the reports from the finished runs")
    args = parser.parse_args(argv)
    gpg_kwargs = parse_kwargs(args.gpg_kwargs)
    if args.variant == "defaults" and gpg_kwargs:
        parser.error("--gpg-kwargs needs a --variant name other than 'defaults'")
    status = 0
    for setup in args.setups:
        for algo in args.algos:
            folder = args.out / ("ppo" if algo == "ppo" else args.variant) / setup
            status = run(algo, folder, setup, args, gpg_kwargs if algo == "gpg" else None) or status
    print(report(args.out, args.variant, random_scores(args.out)).to_string(index=False))
    return status


if __name__ == "__main__":
    sys.exit(main())
