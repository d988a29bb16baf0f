"""
Readable reports of the Optuna studies kept in ``benchmarks/tuning/`` (issue 9).

Each study lives in an Optuna journal file, ``benchmarks/tuning/<study>.log`` (``--storage`` of
``python -m sb3_gpg.train --optimize``), which is what resumes it. This script writes, next to
each journal, ``<study>.csv`` (every trial: state, value, parameters and user attributes, from
Optuna's ``trials_dataframe``), and ``benchmarks/tuning/tuning.md``: per study, its trial counts
and its best trials. Usage::

    python scripts/tuning_report.py
    python scripts/tuning_report.py --top 10 --dir benchmarks/tuning
"""

import argparse
from pathlib import Path

import optuna
import pandas as pd
from bench_report import markdown  # scripts/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parent.parent


def load_studies(journal: Path) -> list[optuna.Study]:
    """
    Every study of an Optuna journal file.

    :param journal: Journal file (``.log``)
    :return: the studies, in creation order
    """
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    return [optuna.load_study(study_name=name, storage=storage) for name in names]


def study_table(study: optuna.Study) -> pd.DataFrame:
    """
    One row per trial: number, state, value, seconds, then its parameters and user attributes.

    :param study: Optuna study
    :return: the table (``params_``/``user_attrs_`` prefixes dropped)
    """
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
    """
    Markdown section of one study: trial counts by state, then its ``top`` complete trials by value.

    :param name: Study name
    :param table: :func:`study_table` of the study
    :param top: How many of the best trials to list
    :return: Markdown text
    """
    counts = table["state"].value_counts()
    lines = [f"## {name}", "", ", ".join(f"{count} {state.lower()}" for state, count in counts.items()) + " trials.", ""]
    complete = table[table["state"] == "COMPLETE"].sort_values("value", ascending=False).head(top)
    if complete.empty:
        return "\n".join([*lines, "No complete trial yet.", ""])
    shown = complete.dropna(axis="columns", how="all").drop(columns=["state"])
    shown = shown.map(_cell)
    return "\n".join([*lines, markdown(shown), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=ROOT / "benchmarks" / "tuning", help="folder of the journal files")
    parser.add_argument("--top", type=int, default=5, help="best complete trials listed per study")
    args = parser.parse_args()
    sections = [
        "# Optuna studies of GPG (issue 9)",
        "",
        "Written by `python scripts/tuning_report.py` from the journal files of this folder; a study resumes",
        "with its own command (see `hyperparams/gpg.yml` and the README). Value: the trial's last evaluation",
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
