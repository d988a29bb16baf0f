"""scripts/defaults_study.py, scripts/stall_study.py and scripts/diagnostics.py: tables checked by hand."""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.scripts import load_script

pytest.importorskip("rl_zoo3")


@pytest.fixture(scope="module")
def defaults():
    return load_script("defaults_study")


@pytest.fixture(scope="module")
def stalls():
    return load_script("stall_study")


def write_result(folder: Path, algo: str, env_id: str, seed: int, final: float, **extra) -> None:
    """A result.json with the fields the study reports read."""
    run = folder / "runs" / algo / env_id / f"seed{seed}"
    run.mkdir(parents=True)
    result = {"algo": algo, "env_id": env_id, "seed": seed, "final_mean": final, "threshold": extra.pop("threshold", None)}
    (run / "result.json").write_text(json.dumps(result | {"log_means": extra}))


def test_defaults_entries_and_kwargs(defaults):
    assert defaults.entry(8, 300_000) == {"policy": "MlpPolicy", "n_envs": 8, "n_timesteps": 300_000.0}
    assert defaults.entry(1, 20_000, {"gamma": 0.9})["gamma"] == 0.9
    assert defaults.parse_kwargs("dict(max_episode_steps=200, baseline='knn')") == {
        "max_episode_steps": 200,
        "baseline": "knn",
    }
    assert defaults.parse_kwargs("dict()") == {}
    with pytest.raises(ValueError, match="dict"):
        defaults.parse_kwargs("{'gamma': 0.9}")
    assert all(budget <= 300_000 for budget in defaults.SUITE.values())


def test_a_variant_keeps_its_gpg_arguments(defaults, tmp_path):
    # A variant's runs were made with its --gpg-kwargs: a later call without them (a report, a resumed sweep) is refused
    # instead of rewriting the variant's configuration as the plain defaults.
    folder = tmp_path / "cap200" / "1env"
    folder.mkdir(parents=True)
    written = {"default": defaults.entry(1, 300_000, {"max_episode_steps": 200})}
    (folder / "gpg.yml").write_text(yaml.safe_dump(written, sort_keys=False))
    args = argparse.Namespace(tasks=["CartPole-v1"], seeds=[100], curve_episodes=3, report_only=True)
    with pytest.raises(SystemExit, match="--gpg-kwargs"):
        defaults.run("gpg", folder, "1env", args, None)
    assert yaml.safe_load((folder / "gpg.yml").read_text()) == written


def test_defaults_report_by_hand(defaults, tmp_path):
    # CartPole-v1, random 20: GPG 200 and 300 (mean 250), PPO 120 and 220 (mean 170): (250 - 20) / (170 - 20) = 1.53;
    # GPG's seed 102 has no PPO run yet, so it waits.
    for seed, final in ((100, 200.0), (101, 300.0), (102, 900.0)):
        write_result(tmp_path / "defaults" / "1env", "gpg", "CartPole-v1", seed, final)
    for seed, final in ((100, 120.0), (101, 220.0)):
        write_result(tmp_path / "ppo" / "1env", "ppo", "CartPole-v1", seed, final)
    table = defaults.report(tmp_path, "defaults", {"CartPole-v1": 20.0})
    (row,) = table.to_dict("records")
    assert (row["setup"], row["gpg_mean"], row["ppo_mean"], row["gpg_seeds"], row["ppo_seeds"], row["seeds"]) == (
        "1env",
        250.0,
        170.0,
        "200 300",
        "120 220",
        "100 101",
    )
    assert row["normalized"] == pytest.approx(230 / 150)
    text = (tmp_path / "defaults" / "report.md").read_text()
    assert "GPG at least PPO on 1 of 1 task-setups." in text and "|CartPole-v1|1env|250.0|170.0|20.0|1.53|100 101|" in text


def test_stall_table_by_hand(stalls, tmp_path):
    # Acrobot-v1's floor is -500: one off run ends there, none with novelty; CartPole-v1 has no floor.
    for seed, final in ((100, -500.0), (101, -80.0)):
        write_result(tmp_path / "off", "gpg", "Acrobot-v1", seed, final, threshold=-100.0, **{"gpg/returns_tied": 0.5})
    for seed, final in ((100, -90.0), (101, -110.0)):
        write_result(tmp_path / "novelty", "gpg", "Acrobot-v1", seed, final, threshold=-100.0, **{"gpg/returns_tied": 0.1})
    write_result(tmp_path / "off", "gpg", "CartPole-v1", 100, 500.0, threshold=475.0)
    for seed in (100, 108):  # not contiguous: the seeds are listed
        write_result(tmp_path / "novelty", "gpg", "CartPole-v1", seed, 500.0, threshold=475.0)
    runs = pd.concat([stalls.load(tmp_path / v, v) for v in ("off", "novelty")])
    rows = {(r["task"], r["variant"]): r for r in stalls.table(runs).to_dict("records")}
    off, novelty = rows["Acrobot-v1", "off"], rows["Acrobot-v1", "novelty"]
    assert (off["runs"], off["seeds"], off["mean"], off["worst"], off["at floor"], off["below threshold"]) == (
        2, "100-101", "-290.0", "-500.0", 1, 1
    )  # fmt: skip
    assert (novelty["at floor"], novelty["below threshold"], novelty["tied rollouts"]) == (0, 1, "0.100")
    assert rows["CartPole-v1", "off"]["at floor"] == "-" and rows["CartPole-v1", "off"]["tied rollouts"] == "nan"
    assert rows["CartPole-v1", "off"]["seeds"] == "100" and rows["CartPole-v1", "novelty"]["seeds"] == "100 108"


def test_stall_report_with_reference_and_seeds(stalls, tmp_path, monkeypatch):
    # A reference folder joins as its own variant; --seeds 100-101 drops seed 102 from both.
    for seed, final in ((100, 250.0), (101, 50.0), (102, 10.0)):
        write_result(tmp_path / "earlier", "gpg", "LunarLander-v3", seed, final, threshold=200.0)
        write_result(tmp_path / "novelty", "gpg", "LunarLander-v3", seed, final, threshold=200.0, **{"gpg/returns_tied": 0.0})
    (tmp_path / "off").mkdir()
    argv = ["stall_study.py", "--out", str(tmp_path), "--seeds", "100", "101", "--reference", f"entry={tmp_path / 'earlier'}"]
    monkeypatch.setattr("sys.argv", argv)
    stalls.main()
    text = (tmp_path / "stalls.md").read_text()
    assert "|LunarLander-v3|entry|2|100-101|150.0|150.0|50.0|-|1|nan|" in text
    assert "|LunarLander-v3|novelty|2|100-101|150.0|150.0|50.0|-|1|0.000|" in text
    assert "Seeds 100-101 only." in text
    assert f"`entry`: earlier runs of the same entries without the parameter, `{(tmp_path / 'earlier').resolve()}`." in text
    monkeypatch.setattr("sys.argv", ["stall_study.py", "--out", str(tmp_path), "--reference", "entry"])
    with pytest.raises(SystemExit):
        stalls.main()


def test_rollout_diagnostics_summary(tmp_path):
    diagnostics = load_script("diagnostics")
    lines = [{"timesteps": 100 * i, "length_mean": float(i)} for i in range(25)]
    (tmp_path / "diagnostics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    table = diagnostics.summary(tmp_path, every=10)
    assert table["timesteps"].tolist() == [0, 1000, 2000, 2400]
    assert np.allclose(table["length_mean"], [0, 10, 20, 24])


def test_rollout_diagnostics_callback_records_each_rollout(tmp_path):
    from sb3_gpg import GPG

    diagnostics = load_script("diagnostics")
    model = GPG("MlpPolicy", "CartPole-v1", group_size=4, n_groups=2, n_epochs=1, seed=0)
    model.learn(300, callback=diagnostics.RolloutDiagnostics(tmp_path / "diagnostics.jsonl"))
    records = [json.loads(line) for line in (tmp_path / "diagnostics.jsonl").read_text().splitlines()]
    assert len(records) >= 2 and all(r["episodes"] == 8 for r in records)
    first = records[0]
    # CartPole pays 1 per step: an episode's return is its length, and the rollout's steps are its episodes' lengths.
    assert first["return_mean"] == pytest.approx(first["length_mean"]) and first["steps"] == pytest.approx(
        8 * first["length_mean"]
    )
    assert first["length_min"] <= first["length_mean"] <= first["length_max"] and not first["tied"]
    assert first["abs_adv_0_50"] > 0 and "train/approx_kl" in records[1]


def test_locomotion_rule_and_report_by_hand():
    locomotion = load_script("locomotion_study")
    rows = [
        ("ppo-zoo", "ppo", 100, 1000.0), ("ppo-zoo", "ppo", 101, 1200.0),  # mean 1100
        ("ppo-sb3-defaults", "ppo", 100, 3000.0), ("ppo-sb3-defaults", "ppo", 101, 2000.0),
        ("ppo-sb3-defaults", "ppo", 102, 10.0),
        ("gpg-a", "gpg", 100, 2600.0), ("gpg-a", "gpg", 101, 2500.0),  # mean 2550 against 2500 on seeds 100-101
    ]  # fmt: skip
    runs = pd.DataFrame(
        [[c, a, "Hopper-v5", s, f, 1.0] for c, a, s, f in rows],
        columns=["config", "algo", "env_id", "seed", "final", "train_s"],
    )
    assert locomotion.ppo_choice(runs, "Hopper-v5") == "ppo-sb3-defaults"
    assert locomotion.ppo_choice(runs[runs.seed != 101], "Hopper-v5") is None  # a rule seed missing
    text = locomotion.report(runs)
    assert "|Hopper-v5|gpg-a|ppo-sb3-defaults|100 101|2550.0|2500.0|yes|" in text and "GPG's entries" not in text
    entry = locomotion.ENTRIES["Hopper-v5"]
    text = locomotion.report(runs.replace({"config": {"gpg-a": entry}}))
    assert f"|Hopper-v5|{entry}|ppo-sb3-defaults|100 101|2550.0|2500.0|1.02|" in text
    tie = runs.assign(final=lambda df: df.final.where(df.config != "ppo-sb3-defaults", 1100.0))
    assert locomotion.ppo_choice(tie, "Hopper-v5") == "ppo-zoo"  # rl-zoo3's entry wins ties
