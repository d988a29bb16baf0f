"""scripts/tuning_report.py: tables and Markdown of journal studies, checked on a study built by hand."""

import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest

from tests.scripts import load_script

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report():
    return load_script("tuning_report")


def _journal_study(path: Path, name: str) -> None:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    distributions = {"lr": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)}
    distributions["binning"] = optuna.distributions.CategoricalDistribution(["timestep", "none"])
    for value, lr in ((-90.0, 1e-3), (-75.5, 3e-4), (-80.25, 1e-4)):
        trial = optuna.trial.create_trial(params={"lr": lr, "binning": "none"}, distributions=distributions, value=value)
        study.add_trial(trial)
    pruned = optuna.trial.create_trial(
        params={"lr": 1e-2, "binning": "none"}, distributions=distributions, state=optuna.trial.TrialState.PRUNED
    )
    study.add_trial(pruned)


def test_report_lists_states_and_best_trials_first(report, tmp_path):
    _journal_study(tmp_path / "acrobot.log", "acrobot-gpg")
    (study,) = report.load_studies(tmp_path / "acrobot.log")
    table = report.study_table(study)
    assert list(table["number"]) == [0, 1, 2, 3] and {"lr", "binning", "value", "state"} <= set(table.columns)
    section = report.study_section("acrobot-gpg", table, top=2)
    assert "3 complete, 1 pruned trials." in section
    rows = [line for line in section.splitlines() if line.startswith("|") and line[1].isdigit()]
    # The two best complete trials, best first; the pruned trial and the worst are not listed.
    assert [row.split("|")[1:3] for row in rows] == [["1", "-75.5"], ["2", "-80.25"]]


def test_main_writes_a_csv_per_study_and_the_markdown(report, tmp_path, monkeypatch):
    _journal_study(tmp_path / "a.log", "acrobot-gpg")
    monkeypatch.setattr(sys, "argv", ["tuning_report.py", "--dir", str(tmp_path)])
    report.main()
    assert len(pd.read_csv(tmp_path / "acrobot-gpg.csv")) == 4
    assert "## acrobot-gpg (`a.log`)" in (tmp_path / "tuning.md").read_text()


def test_trial_entry_is_the_task_entry_with_the_trials_settings(report):
    params = {"n_envs": 16, "group_size": 4, "episodes_per_env": 2, "learning_rate": 3e-4, "lr_schedule": "linear"}
    params |= {"one_minus_gamma": 0.01, "net_width": 128, "net_depth": 2, "activation_fn": "tanh"}
    params |= {"baseline": "group", "per_bin_std": True}
    distributions = {
        name: optuna.distributions.CategoricalDistribution([value])
        if not isinstance(value, float)
        else optuna.distributions.FloatDistribution(value / 2, value * 2)
        for name, value in params.items()
    }
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=-70.0))
    base = {"normalize": True, "n_envs": 8, "n_timesteps": 1e6, "group_size": 8, "n_groups": 2, "bin_width": 10}
    entry = report.trial_entry(study, 0, base)
    # Kept from the task's entry; replaced or added by the trial, as rl-zoo3's --trial-id would.
    assert entry["normalize"] is True and entry["n_timesteps"] == 1e6 and entry["bin_width"] == 10
    assert entry["n_envs"] == 16 and entry["group_size"] == 4 and entry["n_groups"] == 8
    assert entry["learning_rate"] == "lin_0.0003" and entry["gamma"] == pytest.approx(0.99)
    assert entry["baseline_kwargs"] == {"per_bin_std": True} and entry["normalize_advantage"] is False
    assert entry["policy_kwargs"] == "dict(net_arch=[128, 128], activation_fn=nn.Tanh)"
