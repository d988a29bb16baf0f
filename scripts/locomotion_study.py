"""
Locomotion study report: GPG's candidates against PPO at its best on Hopper-v5, Walker2d-v5 and HalfCheetah-v5.

The runs are made by ``scripts/benchmark.py`` with the commands of ``benchmarks/locomotion/PROTOCOL.md`` (one output
folder per configuration: ``ppo-zoo``, ``ppo-sb3-defaults``, ``gpg-<candidate>``). This script reads their
``result.json`` files and writes ``benchmarks/locomotion/locomotion.md``: per task and configuration, the final
return of each seed and their mean over the seeds both have; PPO's configuration per task by the protocol's rule
(the higher mean over seeds 100-101, rl-zoo3's entry on ties), and each GPG candidate's mean against it.

Usage::

    python scripts/locomotion_study.py [--out benchmarks/locomotion]
"""

import argparse
import json
from pathlib import Path

import pandas as pd
from bench_report import markdown  # scripts/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5")
RULE_SEEDS = (100, 101)
#: The folder of each task's configuration in ``hyperparams/gpg.yml`` (its entry, chosen by the protocol's rules).
ENTRIES = {"Hopper-v5": "gpg-ppolike-g995-knn", "Walker2d-v5": "gpg-ppolike-g995-knn-cap500", "HalfCheetah-v5": "gpg-entries"}
#: Runs of another folder that stand for a configuration's: HalfCheetah-v5's entry ran seeds 100-102 in the estimator
#: study before this study's folders existed; its seed 100, rerun here with the current code, gave the same figure to
#: the decimal (``PROTOCOL.md``), so seeds 101-102 are taken from there.
EARLIER = {("gpg-entries", "HalfCheetah-v5", seed): "benchmarks/estimator_study/bin_std" for seed in (101, 102)}


def load(out: Path) -> pd.DataFrame:
    """
    Every finished run under ``out``: configuration (its folder), algorithm, task, seed, final return, seconds; and
    the runs of :data:`EARLIER` that ``out`` does not hold.
    """
    rows, found = [], set()
    for path in sorted(out.glob("*/runs/*/*/seed*/result.json")):
        r = json.loads(path.read_text())
        rows.append([path.parts[-6], r["algo"], r["env_id"], r["seed"], r["final_mean"], r["train_wall_s"]])
        found.add((path.parts[-6], r["env_id"], r["seed"]))
    for (config, env_id, seed), folder in EARLIER.items():
        path = ROOT / folder / "runs" / "gpg" / env_id / f"seed{seed}" / "result.json"
        if (config, env_id, seed) not in found and path.is_file() and (out / config).is_dir():
            r = json.loads(path.read_text())
            rows.append([config, r["algo"], env_id, seed, r["final_mean"], r["train_wall_s"]])
    return pd.DataFrame(rows, columns=["config", "algo", "env_id", "seed", "final", "train_s"])


def ppo_choice(runs: pd.DataFrame, task: str) -> str | None:
    """PPO's configuration on ``task`` by the protocol's rule, or ``None`` while a candidate lacks a rule seed."""
    means = {}
    for config in ("ppo-zoo", "ppo-sb3-defaults"):
        finals = runs[(runs.config == config) & (runs.env_id == task) & runs.seed.isin(RULE_SEEDS)].final
        if len(finals) < len(RULE_SEEDS):
            return None
        means[config] = finals.mean()
    return "ppo-sb3-defaults" if means["ppo-sb3-defaults"] > means["ppo-zoo"] else "ppo-zoo"


def report(runs: pd.DataFrame) -> str:
    """The per-seed table and, per task, each GPG candidate's mean against PPO's chosen configuration."""
    seeds = runs.pivot_table(index=["env_id", "config"], columns="seed", values="final").round(1).reset_index()
    earlier = ", ".join(f"{c} {e} seed {s} ({f})" for (c, e, s), f in EARLIER.items())
    lines = ["# Locomotion: GPG's candidates against PPO at its best", "", "Final return by seed:", "", markdown(seeds)]
    lines += [f"Taken from earlier runs of the same settings: {earlier}.", ""]
    rows, entries = [], []
    for task in TASKS:
        ppo = ppo_choice(runs, task)
        if ppo is None:
            continue
        reference = runs[(runs.config == ppo) & (runs.env_id == task)].set_index("seed").final
        for config, g in runs[(runs.algo == "gpg") & (runs.env_id == task)].groupby("config"):
            common = sorted(set(g.seed) & set(reference.index))
            if common:
                gpg_mean, ppo_mean = g.set_index("seed").final[common].mean(), reference[common].mean()
                row = [task, config, ppo, " ".join(map(str, common)), f"{gpg_mean:.1f}", f"{ppo_mean:.1f}"]
                rows.append([*row, "yes" if gpg_mean >= ppo_mean else "no"])
                if config == ENTRIES[task]:
                    entries.append([*row, f"{gpg_mean / ppo_mean:.2f}"])
    lines += ["", f"PPO's configuration per task: the higher mean over seeds {RULE_SEEDS[0]}-{RULE_SEEDS[-1]}.", ""]
    columns = ["task", "GPG", "PPO", "common seeds", "GPG mean", "PPO mean", "GPG >= PPO"]
    lines += [
        markdown(pd.DataFrame(rows, columns=columns)) if rows else "(no task has both PPO candidates on the rule's seeds yet)"
    ]
    if entries:
        columns = ["task", "GPG's entry", "PPO", "common seeds", "GPG mean", "PPO mean", "GPG / PPO"]
        lines += [
            "",
            "GPG's entries (`hyperparams/gpg.yml`) against PPO at its best:",
            "",
            markdown(pd.DataFrame(entries, columns=columns)),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "locomotion")
    args = parser.parse_args()
    text = report(load(args.out))
    (args.out / "locomotion.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
