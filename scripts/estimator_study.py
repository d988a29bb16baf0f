"""
Estimator study: GPG's advantage estimator variants on one fixed protocol.

Every variant is the study's source configuration (``benchmarks/estimator_study/source_gpg.yml``:
``hyperparams/gpg.yml`` as it was when the study started, so that later entry changes neither
rerun nor mix its runs) with the same entries, plus the variant's
``baseline``/``baseline_kwargs`` (and ``normalize_advantage``) in each task's entry. Each variant
runs through ``scripts/benchmark.py`` (rl-zoo3 runs, one process each, resumable per run) into
``benchmarks/estimator_study/<variant>/``, on seeds the benchmark never uses (100-102), at the
benchmark's budgets. The report ``benchmarks/estimator_study/study.md`` (and ``study.csv``) gives,
per task and variant, the interquartile mean of the final return over seeds and its ratio to the
default estimator's, with random = 0 and the default = 1.

Usage::

    python scripts/estimator_study.py                      # run (or resume) every variant, then report
    python scripts/estimator_study.py --variants loo knn   # some variants only
    python scripts/estimator_study.py --report-only
"""

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from bench_report import iqm, markdown
from benchmark import RANDOM_SCORES  # scripts/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "estimator_study"
TASKS = ("Acrobot-v1", "LunarLander-v3", "LunarLanderContinuous-v3", "HalfCheetah-v5", "Hopper-v5")
SEEDS = (100, 101, 102)

#: name -> (what it measures, the GPG arguments it adds to every entry).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("binned group mean, advantages normalised per minibatch (today's estimator)", {}),
    "loo": ("leave-one-out group mean (RLOO)", {"baseline_kwargs": {"leave_one_out": True}}),
    "bin_std": (
        "per-bin std normalisation (GRPO) instead of per-minibatch normalisation",
        {"baseline_kwargs": {"per_bin_std": True}, "normalize_advantage": False},
    ),
    "thin_pool": (
        "thin bins (fewer than 3 returns in the group) take the bin pooled over the rollout's groups",
        {"baseline_kwargs": {"min_bin_count": 3}},
    ),
    "knn": (
        "k-nearest-neighbour baseline over other episodes' steps (k=16, 2 folds, observation + time)",
        {"baseline": "knn"},
    ),
}


def variant_config(name: str, source: Path, tasks: tuple[str, ...]) -> dict[str, Any]:
    """
    The configuration of a variant: the source entries of ``tasks`` with the variant's arguments.

    :param name: Variant name (a key of :data:`VARIANTS`).
    :param source: rl-zoo3 configuration file of GPG.
    :param tasks: Tasks to keep.
    :return: The configuration, as rl-zoo3 reads it.
    """
    entries = yaml.safe_load(source.read_text())
    extra = VARIANTS[name][1]
    # An entry's own estimator choice gives way to the variant's: every variant starts from the group baseline.
    # rl-zoo3 evaluates string values of policy_kwargs only; dicts are passed as they are.
    own = ("baseline", "baseline_kwargs")
    return {task: {**{k: v for k, v in entries[task].items() if k not in own}, **extra} for task in tasks}


def run_variant(name: str, args: argparse.Namespace) -> int:
    """
    Write the variant's configuration and run (or resume) its runs with the benchmark.

    :param name: Variant name.
    :param args: Parsed command line.
    :return: The benchmark's exit status.
    """
    folder = args.out / name
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "gpg.yml"
    conf.write_text(yaml.safe_dump(variant_config(name, args.conf, tuple(args.tasks)), sort_keys=False))
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--algos", "gpg", "--conf", f"gpg={conf}"]
    command += ["--out", str(folder), "--tasks", *args.tasks, "--seeds", *map(str, args.seeds), "--n-jobs", str(args.n_jobs)]
    return subprocess.call(command + (["--report-only"] if args.report_only else []))


def report(out: Path, variants: list[str], random_scores: dict[str, float]) -> pd.DataFrame:
    """
    Per task and variant: IQM of the final return, seeds, and the ratio to the default estimator.

    :param out: Study folder (one sub-folder per variant, each with the benchmark's ``results.csv``).
    :param variants: Variants to report.
    :param random_scores: Random policy's return per task (0 of the normalised scale).
    :return: The table (also written as ``study.csv`` and ``study.md``).
    """
    frames = [
        pd.read_csv(out / name / "results.csv").assign(variant=name)
        for name in variants
        if (out / name / "results.csv").exists()
    ]
    if not frames:
        raise SystemExit(f"no finished variant under {out}")
    results = pd.concat(frames)
    table = results.groupby(["env_id", "variant"])["final_mean"].agg(iqm=iqm, seeds="count").reset_index()
    default = table[table.variant == "default"].set_index("env_id")["iqm"]
    random = table.env_id.map(random_scores)
    table["normalized"] = (table["iqm"] - random) / (table.env_id.map(default) - random)
    table = table.sort_values(["env_id", "variant"])
    table.to_csv(out / "study.csv", index=False)
    lines = ["# Estimator study", "", "Variants (each added to every task's `hyperparams/gpg.yml` entry):", ""]
    lines += [f"- `{name}`: {VARIANTS[name][0]}; arguments `{VARIANTS[name][1]}`" for name in variants]
    lines += ["", "Final return (IQM over seeds; `normalized`: random = 0, `default` = 1):", ""]
    lines += [markdown(table.round({"iqm": 1, "normalized": 3}))]
    (out / "study.md").write_text("\n".join(lines) + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--conf", type=Path, default=OUT / "source_gpg.yml", help="GPG's source configuration")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--report-only", action="store_true", help="rewrite the reports from the finished runs")
    args = parser.parse_args(argv)
    status = 0
    for name in args.variants:
        status = run_variant(name, args) or status
    print(report(args.out, args.variants, RANDOM_SCORES).to_string(index=False))
    return status


if __name__ == "__main__":
    sys.exit(main())
