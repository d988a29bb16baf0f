"""scripts/estimator_study.py: variant configurations and the report, by hand."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.scripts import load_script

pytest.importorskip("rl_zoo3")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def study():
    return load_script("estimator_study")


def test_variant_config_adds_the_variant_to_every_entry(study):
    config = study.variant_config("bin_std", REPO / "hyperparams" / "gpg.yml", ("Acrobot-v1", "Hopper-v5"))
    source = yaml.safe_load((REPO / "hyperparams" / "gpg.yml").read_text())
    assert list(config) == ["Acrobot-v1", "Hopper-v5"]
    for task, entry in config.items():
        # The variant's baseline replaces the entry's own (Hopper-v5's entry names the knn baseline).
        own = {key: value for key, value in source[task].items() if key not in ("baseline", "baseline_kwargs")}
        assert entry == {**own, "baseline_kwargs": {"per_bin_std": True}, "normalize_advantage": False}
    assert study.variant_config("default", REPO / "hyperparams" / "gpg.yml", ("Acrobot-v1",)) == {
        "Acrobot-v1": source["Acrobot-v1"]
    }


def test_an_entrys_own_baseline_gives_way_to_the_variants(study, tmp_path):
    source = tmp_path / "gpg.yml"
    source.write_text(yaml.safe_dump({"T-v0": {"n_envs": 4, "baseline": "knn", "baseline_kwargs": {"n_neighbors": 8}}}))
    assert study.variant_config("default", source, ("T-v0",)) == {"T-v0": {"n_envs": 4}}
    loo = {"T-v0": {"n_envs": 4, "baseline_kwargs": {"leave_one_out": True}}}
    assert study.variant_config("loo", source, ("T-v0",)) == loo


def test_every_variant_is_a_valid_gpg_configuration(study):
    from sb3_gpg import GPG

    for _, extra in study.VARIANTS.values():
        GPG("MlpPolicy", "CartPole-v1", **extra)  # refused here if an option were unknown or invalid


def test_report_iqm_and_normalisation_by_hand(study, tmp_path):
    # Task A: default seeds 10, 20, 30, 40 -> IQM 25 (middle two); loo 30, 40, 50, 60 -> 45. Random scores 5.
    for name, values in {"default": [10, 20, 30, 40], "loo": [30, 40, 50, 60]}.items():
        (tmp_path / name).mkdir()
        rows = [{"env_id": "A", "seed": seed, "final_mean": value} for seed, value in enumerate(values)]
        pd.DataFrame(rows).to_csv(tmp_path / name / "results.csv", index=False)
    table = study.report(tmp_path, ["default", "loo", "knn"], {"A": 5.0}).set_index("variant")
    assert table.loc["default", "iqm"] == 25.0 and table.loc["loo", "iqm"] == 45.0
    assert table.loc["default", "normalized"] == 1.0
    assert table.loc["loo", "normalized"] == pytest.approx((45 - 5) / (25 - 5))
    assert table.loc["loo", "seeds"] == 4
    text = (tmp_path / "study.md").read_text()
    assert "`loo`: leave-one-out" in text and "|A|loo|45.0|4|2.0|" in text
