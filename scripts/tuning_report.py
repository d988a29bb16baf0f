"""
Readable reports of the Optuna studies kept in ``benchmarks/tuning/``.

Each study lives in an Optuna journal file, ``benchmarks/tuning/<study>.log`` (``--storage`` of
``python -m sb3_gpg.train --optimize``), which is what resumes it. This script writes, next to
each journal, ``<study>.csv`` (every trial: state, value, parameters and user attributes, from
Optuna's ``trials_dataframe``), and ``benchmarks/tuning/tuning.md``: per study, its trial counts
and its best trials. ``--entry`` instead writes one trial as a ``gpg.yml`` entry (the task's
entry in ``hyperparams/gpg.yml`` updated with the trial's settings), to train or benchmark it on
other seeds (``scripts/benchmark.py --conf gpg=FILE``, or a study file's variant). Usage::

    python scripts/tuning_report.py
    python scripts/tuning_report.py --top 10 --dir benchmarks/tuning
    python scripts/tuning_report.py --entry acrobot-gpg-1m 10 Acrobot-v1 --out acrobot-trial10.yml
    python scripts/tuning_report.py --dir DIR --entry STUDY best ENV --out best.yml   # the study's best trial
"""

import argparse
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml
from bench_report import markdown  # scripts/ is on sys.path when this file runs as a script

from sb3_gpg.zoo import config_path
from sb3_gpg.zoo.sampler import convert_gpg_params

ROOT = Path(__file__).resolve().parent.parent


def load_studies(journal: Path) -> list[optuna.Study]:
    """Every study of an Optuna journal file (``.log``), in creation order."""
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    return [optuna.load_study(study_name=s.study_name, storage=storage) for s in optuna.get_all_study_summaries(storage)]


def study_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, seconds, then its parameters and user attributes (without prefixes)."""
    table = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"))
    if "duration" in table:
        table["seconds"] = table.pop("duration").dt.total_seconds().round(1)
    return table.rename(columns=lambda column: column.removeprefix("params_").removeprefix("user_attrs_"))


def _cell(value: object) -> str:
    """A table cell: floats with 4 significant digits, an unsampled parameter (NaN, None) empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def study_section(name: str, table: pd.DataFrame, top: int) -> str:
    """Markdown section ``name`` of a :func:`study_table`: trial counts by state, then the ``top`` best complete trials."""
    counts = ", ".join(f"{count} {state.lower()}" for state, count in table["state"].value_counts().items())
    lines = [f"## {name}", "", f"{counts} trials.", ""]
    complete = table[table["state"] == "COMPLETE"].sort_values("value", ascending=False).head(top)
    if complete.empty:
        return "\n".join([*lines, "No complete trial yet.", ""])
    shown = complete.dropna(axis="columns", how="all").drop(columns=["state"]).map(_cell)
    return "\n".join([*lines, markdown(shown), ""])


def trial_entry(study: optuna.Study, number: int, base: dict[str, Any]) -> dict[str, Any]:
    """
    A ``gpg.yml`` entry with the settings of trial ``number``: ``base`` (the task's entry: ``n_timesteps``,
    ``normalize``, ...) updated with what rl-zoo3's ``--trial-id`` would use, ``policy_kwargs`` written as rl-zoo3
    reads it (a string, activations as ``nn.<Name>``).
    """
    entry = {**base, **convert_gpg_params(study.trials[number].params)}
    if isinstance(policy_kwargs := entry.get("policy_kwargs"), dict):
        items = (f"{k}=nn.{v.__name__}" if isinstance(v, type) else f"{k}={v!r}" for k, v in policy_kwargs.items())
        entry["policy_kwargs"] = f"dict({', '.join(items)})"
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--dir", type=Path, default=ROOT / "benchmarks" / "tuning", help="folder of the journal files")
    add("--top", type=int, default=5, help="best complete trials listed per study")
    add("--entry", nargs=3, metavar=("STUDY", "TRIAL", "ENV"), help="write a trial (a number, or best) as ENV's gpg.yml entry")
    add("--out", type=Path, help="file of --entry (default: print it)")
    args = parser.parse_args()
    if args.entry:
        name, number, env_id = args.entry
        (study,) = [study for journal in args.dir.glob("*.log") for study in load_studies(journal) if study.study_name == name]
        base = yaml.safe_load(config_path("gpg").read_text()).get(env_id, {})
        trial = study.best_trial.number if number == "best" else int(number)
        text = yaml.safe_dump({env_id: trial_entry(study, trial, base)}, sort_keys=False)
        print(text, end="") if args.out is None else args.out.write_text(text)
        return
    sections = [
        "# Optuna studies of GPG",
        "",
        "Written by `python scripts/tuning_report.py` from the journal files of this folder; a study resumes",
        "when its `--optimize` command runs again on its journal file with a new `--seed` (see the documentation's",
        "rl-zoo3 page). Value: the trial's last evaluation",
        "(mean return of rl-zoo3's evaluation episodes), the maximum of noisy estimates for the best trial.",
        "",
    ]
    for journal in sorted(args.dir.glob("*.log")):
        for study in load_studies(journal):
            table = study_table(study)
            table.to_csv(args.dir / f"{study.study_name}.csv", index=False)
            sections.append(study_section(f"{study.study_name} (`{journal.name}`)", table, args.top))
    (args.dir / "tuning.md").write_text("\n".join(sections))
    print(f"wrote {args.dir / 'tuning.md'}")


if __name__ == "__main__":
    main()
