"""
Stall study report: GPG with and without ``explore_ties`` on tasks whose returns tie (``benchmarks/stalls/``).

The runs are made by ``scripts/benchmark.py`` with the commands of ``benchmarks/stalls/PROTOCOL.md`` (one output
folder per variant, ``off`` and ``novelty``). This script reads their ``result.json`` files and writes
``benchmarks/stalls/stalls.md``: per task and variant, the runs and their seeds, the mean, IQM and worst final
return, the runs that end at the task's floor (every evaluation episode times out without success), the runs
below the task's threshold, and the share of rollouts whose returns tied (``gpg/returns_tied``).

Usage::

    python scripts/stall_study.py [--out benchmarks/stalls] [--variants off novelty] [--seeds 100 101 ...] \
        [--reference LABEL=FOLDER ...]

``--reference`` adds earlier runs of the same entries made without the parameter (any folder written by
``scripts/benchmark.py``), reported as the variant ``LABEL``: where ``off`` has not run a task, they show what
``explore_ties`` changed on it. ``--seeds`` keeps the runs of the protocol's seeds only.
"""

import argparse
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from bench_report import iqm, markdown  # scripts/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parent.parent
#: Final return of a run whose every evaluation episode times out without success.
FLOORS = {"Acrobot-v1": -500.0, "MountainCar-v0": -200.0}


def load(folder: Path, variant: str) -> pd.DataFrame:
    """The finished runs of a variant's folder: task, seed, final return, threshold, share of tied rollouts."""
    rows = []
    for path in sorted(folder.glob("runs/gpg/*/seed*/result.json")):
        r = json.loads(path.read_text())
        tied = r["log_means"].get("gpg/returns_tied", float("nan"))
        rows.append([variant, r["env_id"], r["seed"], r["final_mean"], r["threshold"], tied])
    return pd.DataFrame(rows, columns=["variant", "env_id", "seed", "final", "threshold", "tied"])


def seed_text(seeds: Iterable[int]) -> str:
    """Seeds as the report names them: ``100-109`` when they run without a gap, else listed (``100 108``)."""
    seeds = sorted(set(map(int, seeds)))
    contiguous = len(seeds) > 1 and seeds[-1] - seeds[0] == len(seeds) - 1
    return f"{seeds[0]}-{seeds[-1]}" if contiguous else " ".join(map(str, seeds))


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task and variant: runs, seeds, mean, IQM, worst, runs at the floor and below the threshold, tied share."""
    rows = []
    for (env_id, variant), g in runs.groupby(["env_id", "variant"], sort=False):
        floor, threshold = FLOORS.get(env_id), g.threshold.iloc[0]
        at_floor = "-" if floor is None else int((g.final <= floor).sum())
        below = "-" if pd.isna(threshold) else int((g.final < threshold).sum())
        rows.append([env_id, variant, len(g), seed_text(g.seed), f"{g.final.mean():.1f}", f"{iqm(g.final):.1f}",
                     f"{g.final.min():.1f}", at_floor, below, f"{g.tied.mean():.3f}"])  # fmt: skip
    columns = ["task", "variant", "runs", "seeds", "mean", "IQM", "worst", "at floor", "below threshold", "tied rollouts"]
    return pd.DataFrame(rows, columns=columns)


def _shown(folder: Path) -> str:
    """A folder as the report names it: relative to the checkout where it lies inside it."""
    folder = folder.resolve()
    return str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "stalls")
    parser.add_argument("--variants", nargs="+", default=["off", "novelty"])
    parser.add_argument("--reference", nargs="*", default=[], metavar="LABEL=FOLDER", help="earlier runs to report too")
    parser.add_argument("--seeds", nargs="+", type=int, help="keep only the runs of these seeds (default: all)")
    args = parser.parse_args()
    folders, references = [(args.out / v, v) for v in args.variants], []
    for item in args.reference:
        label, sep, folder = item.partition("=")
        if not sep or not label or not folder:
            parser.error(f"--reference takes LABEL=FOLDER, got {item!r}")
        references.append((Path(folder), label))
    runs = pd.concat([load(folder, label) for folder, label in folders + references])
    if args.seeds:
        runs = runs[runs.seed.isin(args.seeds)]
    runs = runs.sort_values(["env_id", "variant", "seed"])
    text = "\n".join(
        [
            "# Stall study: GPG with explore_ties off and on",
            "",
            "Protocol and commands: `PROTOCOL.md`. Final return: 20 deterministic episodes after the entry's budget.",
            f"At the floor: every episode times out without success ({', '.join(f'{k} {v:g}' for k, v in FLOORS.items())}).",
            "`tied rollouts`: mean over the runs of the share of rollouts whose returns tied in every group.",
            *[f"`{label}`: earlier runs of the same entries without the parameter, `{_shown(f)}`." for f, label in references],
            *([f"Seeds {seed_text(args.seeds)} only."] if args.seeds else []),
            "",
            markdown(table(runs)),
            "Per run (final return by seed):",
            "",
            markdown(runs.pivot_table(index=["env_id", "variant"], columns="seed", values="final").round(1).reset_index()),
        ]
    )
    (args.out / "stalls.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
