"""
rl-zoo3 integration: registration, gpg.yml, Optuna sampler, and the real command lines.

The command-line tests run ``python -m sb3_gpg.*`` in subprocesses, with a temporary directory
(not the repository) as working directory and tiny budgets. The tests marked ``postgres`` need the
local PostgreSQL server that ``.ci/postgres.sh`` starts (its URL in ``SB3_GPG_PG_URL``); they are
skipped without it.
"""

import inspect
import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import yaml

optuna = pytest.importorskip("optuna")
pytest.importorskip("rl_zoo3")

from rl_zoo3.callbacks import TrialEvalCallback  # noqa: E402
from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER, sample_ppo_params  # noqa: E402
from rl_zoo3.utils import ALGOS, get_wrapper_class, linear_schedule  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.vec_env import VecNormalize  # noqa: E402
from torch import nn  # noqa: E402

from sb3_gpg import GPG, zoo  # noqa: E402
from sb3_gpg.zoo import sampler  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PPO_YML = Path(inspect.getfile(HYPERPARAMS_SAMPLER["ppo"])).parent / "hyperparams" / "ppo.yml"
ENVS = [
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Pendulum-v1",
    "LunarLander-v3",
    "LunarLanderContinuous-v3",
    "BipedalWalker-v3",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
]
#: Keys of a gpg.yml entry that rl-zoo3 consumes itself (the others go to GPG's constructor).
ZOO_KEYS = {"n_envs", "n_timesteps", "normalize", "env_wrapper", "vec_env_wrapper", "frame_stack", "callback", "env_kwargs"}
GPG_ARGS = set(inspect.signature(GPG.__init__).parameters) - {"self", "env", "_init_setup_model"}
#: Common flags of the tuning runs: tiny budget, 2 evaluations (pruning), no plot windows.
OPTIMIZE_FLAGS = [
    "--optimize",
    "-n",
    "1500",
    "--n-evaluations",
    "2",
    "--n-startup-trials",
    "1",
    "--eval-episodes",
    "2",
    "--no-optim-plots",
    "--num-threads",
    "1",
]
TRIAL_LINE = re.compile(r"Trial (\d+) (finished|pruned)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # One thread per process: the machine has two cores, shared.
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    # The package is normally installed (pip install -e .); the repository on the path is a fallback.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO)]))
    return env


def run(module: str, *args: str, cwd: Path, timeout: float = 180) -> str:
    """Run ``python -m module args`` in ``cwd``; fail with its output unless it exits 0; return stdout + stderr."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"python -m {module} {' '.join(args)} exited {result.returncode}:\n{output[-6000:]}"
    return output


def saved_config(run_dir: Path, env_id: str = "CartPole-v1") -> dict[str, Any]:
    """The hyperparameters an rl-zoo3 run saved (config.yml, which may hold Python classes)."""
    with open(run_dir / env_id / "config.yml") as file:
        return dict(yaml.load(file, Loader=yaml.UnsafeLoader))


def check_reloaded(config: dict[str, Any], trial: "optuna.trial.FrozenTrial") -> None:
    """The run's hyperparameters are the trial's (through GPG's converter)."""
    expected = zoo.convert_gpg_params(trial.params)
    assert ("bin_width" in trial.params) == (trial.params["binning"] == "timestep")
    for key in ("group_size", "n_groups", "n_envs", "binning", "batch_size", "n_epochs", "clip_range", "target_kl"):
        assert config[key] == expected[key], key
    if "bin_width" in expected:
        assert config["bin_width"] == expected["bin_width"]
    for key in ("gamma", "ent_coef", "max_grad_norm"):
        assert math.isclose(config[key], expected[key]), key
    # A linear schedule is saved as rl-zoo3 writes it in a configuration file ("lin_<initial value>").
    assert config["learning_rate"] == expected["learning_rate"]
    assert config["policy_kwargs"] == expected["policy_kwargs"]


# ----------------------------------------------------------------------------- registration, config


def test_register_puts_gpg_in_rl_zoo3_registries():
    zoo.register()
    zoo.register()  # idempotent
    assert ALGOS["gpg"] is GPG
    assert HYPERPARAMS_SAMPLER["gpg"] is zoo.sample_gpg_params
    assert HYPERPARAMS_CONVERTER["gpg"] is zoo.convert_gpg_params
    # Same signature as rl-zoo3's own samplers: sampler(trial, n_actions, n_envs, additional_args).
    assert list(inspect.signature(zoo.sample_gpg_params).parameters) == list(inspect.signature(sample_ppo_params).parameters)
    # rl-zoo3's algorithms stay registered.
    assert {"ppo", "a2c", "dqn", "sac"} <= set(ALGOS)


@pytest.mark.slow
def test_core_never_imports_the_zoo_and_the_zoo_registers_nothing_on_import():
    code = (
        "import sys, sb3_gpg\n"
        "assert not any(name.startswith(('sb3_gpg.zoo', 'rl_zoo3', 'optuna')) for name in sys.modules), sorted(sys.modules)\n"
        "import sb3_gpg.zoo\n"
        "from rl_zoo3.utils import ALGOS\n"
        "from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER\n"
        "assert 'gpg' not in ALGOS and 'gpg' not in HYPERPARAMS_SAMPLER\n"
        "sb3_gpg.zoo.register()\n"
        "assert ALGOS['gpg'] is sb3_gpg.GPG\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_patches_last_for_one_command():
    from rl_zoo3.exp_manager import ExperimentManager

    objective, create_study = ExperimentManager.objective, optuna.create_study
    with zoo.tunable_n_envs(), zoo.study_heartbeats():
        assert ExperimentManager.objective is not objective and optuna.create_study is not create_study
    assert ExperimentManager.objective is objective and optuna.create_study is create_study
    with pytest.raises(RuntimeError), zoo.tunable_n_envs():
        raise RuntimeError("a command that fails")
    assert ExperimentManager.objective is objective


def test_hyperparams_found_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = zoo.config_path("gpg")
    assert path.is_absolute() and path.is_file() and path.name == "gpg.yml"


def test_train_args_defaults():
    conf = str(zoo.config_path())
    assert zoo.train_args(["--env", "CartPole-v1"]) == ["--conf-file", conf, "--algo", "gpg", "--env", "CartPole-v1"]
    assert zoo.train_args(["--algo=gpg"]) == ["--conf-file", conf, "--algo=gpg"]
    # rl-zoo3's algorithms keep rl-zoo3's configurations; an explicit configuration wins.
    assert zoo.train_args(["--algo", "ppo"]) == ["--algo", "ppo"]
    assert zoo.train_args(["--algo", "gpg", "-conf", "my.yml"]) == ["--algo", "gpg", "-conf", "my.yml"]
    assert zoo.train_args(["--algo", "gpg", "--conf-file=my.yml"]) == ["--algo", "gpg", "--conf-file=my.yml"]
    # A line the peek parser cannot read is left to rl-zoo3's parser, which reports the error.
    assert zoo.train_args(["--algo", "gpg", "--trial-id", "x"]) == ["--algo", "gpg", "--trial-id", "x"]


def test_a_trial_id_the_study_does_not_hold_is_refused_with_the_ids_it_does(tmp_path):
    import optuna

    storage = str(tmp_path / "study.log")
    backend = optuna.storages.journal.JournalFileBackend(storage)
    study = optuna.create_study(storage=optuna.storages.JournalStorage(backend), study_name="s")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    line = ["--algo", "gpg", "--storage", storage, "--study-name", "s"]
    assert zoo.train_args([*line, "--trial-id", "1"])[-2:] == ["--trial-id", "1"]
    assert zoo.train_args([*line, "--trial-id", "-2"])[-2:] == ["--trial-id", "-2"]
    with pytest.raises(SystemExit, match=r"--trial-id 5: study 's' in .* holds trials 0 to 1"):
        zoo.train_args([*line, "--trial-id", "5"])


def test_an_env_without_an_entry_is_said_to_be_untuned():
    from sb3_gpg.zoo.cli import untuned_note

    note = untuned_note(zoo.train_args(["--env", "Swimmer-v5"]))
    assert note is not None and "no entry for Swimmer-v5" in note and "untuned" in note and "--optimize" in note
    assert untuned_note(zoo.train_args(["--env", "CartPole-v1"])) is None
    assert untuned_note(["--algo", "ppo", "--env", "Swimmer-v5"]) is None


def test_train_help_lists_rl_zoo3_flags_and_gpg(capsys):
    from sb3_gpg.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--optimize-hyperparameters", "--storage", "--study-name", "--trial-id", "--conf-file", "--vec-env"):
        assert flag in text
    assert "gpg" in text and "ppo" in text


def _gpg_yml() -> dict[str, dict[str, Any]]:
    with open(zoo.config_path()) as file:
        return yaml.safe_load(file)


def test_gpg_yml_entries():
    config = _gpg_yml()
    assert set(ENVS) | {"default"} <= set(config)
    with open(PPO_YML) as file:
        ppo = yaml.safe_load(file)
    lines = zoo.config_path().read_text().splitlines()
    for env_id, entry in config.items():
        # Each entry says whether it was tuned: on its own line or in the comment block right above it.
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{env_id}:"))
        above = start
        while above > 0 and lines[above - 1].startswith("#"):
            above -= 1
        header = " ".join(lines[above : start + 1])
        assert "untuned starting point" in header or "tuned" in header, env_id
        assert set(entry) <= ZOO_KEYS | GPG_ARGS | {"policy"}, (env_id, set(entry) - ZOO_KEYS - GPG_ARGS)
        # Numbers are numbers for yaml.safe_load (1e5 would be a string).
        for key, value in entry.items():
            if isinstance(value, str):
                assert not re.fullmatch(r"[-+]?[0-9.]+(e[-+]?[0-9]+)?", value, re.IGNORECASE), (env_id, key, value)
        assert isinstance(entry["n_timesteps"], float)
        group_size = entry.get("group_size", 8)
        assert group_size >= 2
        if entry.get("n_groups") is not None:
            assert entry["n_groups"] * group_size >= entry.get("n_envs", 1), env_id
        if env_id in ENVS:
            # Same env-step budget and normalisation as rl-zoo3's PPO; n_envs is a GPG hyperparameter (tuned).
            ppo_id = env_id.replace("-v5", "-v4") if env_id not in ppo else env_id
            assert entry["n_timesteps"] == ppo[ppo_id]["n_timesteps"], env_id
            assert bool(entry.get("normalize", False)) == bool(ppo[ppo_id].get("normalize", False)), env_id


def _build_from_entry(env_id: str, entry: dict[str, Any]) -> GPG:
    """Build GPG as rl-zoo3 would from a gpg.yml entry (no training)."""
    kwargs = dict(entry)
    n_envs = kwargs.pop("n_envs", 1)
    kwargs.pop("n_timesteps")
    normalize = kwargs.pop("normalize", False)
    wrapper = get_wrapper_class(kwargs)
    kwargs.pop("env_wrapper", None)
    for key in ("learning_rate", "clip_range"):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = linear_schedule(kwargs[key].split("_")[1])
    if isinstance(kwargs.get("policy_kwargs"), str):
        kwargs["policy_kwargs"] = eval(kwargs["policy_kwargs"], {"nn": nn})
    env = make_vec_env(env_id, n_envs=n_envs, wrapper_class=wrapper, seed=0)
    if normalize:
        env = VecNormalize(env)
    return GPG(env=env, **kwargs)


@pytest.mark.parametrize("env_id", ENVS)
def test_gpg_yml_entry_builds_a_model(env_id):
    try:
        gym.make(env_id).close()
    except (gym.error.DependencyNotInstalled, ImportError, gym.error.Error) as error:
        pytest.skip(f"{env_id} cannot be made here: {error}")
    model = _build_from_entry(env_id, _gpg_yml()[env_id])
    assert model.episodes_per_rollout >= model.n_envs
    model.env.close()


# ----------------------------------------------------------------------------- Optuna sampler


def _materialise(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """A converter's result as rl-zoo3 hands it to the model: "lin_x" learning rates become schedules."""
    result = dict(hyperparams)
    if isinstance(result.get("learning_rate"), str):
        result["learning_rate"] = linear_schedule(result["learning_rate"].split("_", 1)[1])
    return result


def _same_hyperparams(first: dict[str, Any], second: dict[str, Any]) -> bool:
    def comparable(hyperparams: dict[str, Any]) -> dict[str, Any]:
        rate = hyperparams["learning_rate"]
        return {**hyperparams, "learning_rate": (type(rate).__name__, rate(1.0) if callable(rate) else rate)}

    return comparable(first) == comparable(second)


@pytest.mark.parametrize("n_actions", [0, 3])
@pytest.mark.parametrize("tune_n_envs", [True, False])
def test_sampler_proposes_only_valid_combinations(n_actions, tune_n_envs):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=n_actions + tune_n_envs), direction="maximize")
    seen = set()
    for _ in range(200):
        trial = study.ask()
        # As rl-zoo3's objective does under zoo.tunable_n_envs(), or with the configuration's n_envs (here 3).
        n_envs = zoo.suggest_n_envs(trial) if tune_n_envs else 3
        params = zoo.sample_gpg_params(trial, n_actions, n_envs, {})
        assert params["group_size"] >= 2
        assert params["n_groups"] * params["group_size"] >= n_envs
        assert set(params) <= GPG_ARGS, set(params) - GPG_ARGS
        assert 0.9 <= params["gamma"] < 1.0
        policy_kwargs = params["policy_kwargs"]
        assert len(policy_kwargs["net_arch"]) in (1, 2, 3) and set(policy_kwargs["net_arch"]) <= set(sampler.NET_WIDTHS)
        # bin_width only where it means something, log_std_init only for Box action spaces.
        assert ("bin_width" in trial.params) == (params["binning"] == "timestep") == ("bin_width" in params)
        assert ("bin_eps" in trial.params) == (params["binning"] == "grid") == ("bin_eps" in params)
        assert ("log_std_init" in policy_kwargs) == (n_actions > 0) == ("log_std_init" in trial.params)
        # GRPO's per-bin std only with the group baseline, and then instead of the minibatch normalisation.
        # The trial's estimator replaces an entry's whole (an entry's per_bin_std does not apply to knn).
        per_bin_std = (params["baseline_kwargs"] or {}).get("per_bin_std", False)
        assert ("per_bin_std" in trial.params) == (params["baseline"] == "group")
        assert per_bin_std == trial.params.get("per_bin_std", False) == (not params["normalize_advantage"])
        assert params["baseline_kwargs"] in (None, {"per_bin_std": True})
        # The converter rebuilds the same hyperparameters from the stored trial (plus n_envs for rl-zoo3).
        reloaded = zoo.convert_gpg_params(trial.params)
        assert reloaded.pop("n_envs") == n_envs == trial.params["n_envs"]
        assert _same_hyperparams(_materialise(reloaded), params)
        seen.add((n_envs, params["target_kl"], callable(params["learning_rate"]), params["baseline"], per_bin_std))
        study.tell(trial, 0.0)
    assert {n_envs for n_envs, *_ in seen} == (set(sampler.N_ENVS) if tune_n_envs else {3})
    assert {seen_[1] for seen_ in seen} == set(sampler.TARGET_KLS)
    assert {seen_[2] for seen_ in seen} == {True, False}
    assert {seen_[3:] for seen_ in seen} == {("group", False), ("group", True), ("knn", False)}


def test_sampler_proposals_build_a_model():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    # rl-zoo3 updates the entry's hyperparameters with the trial's: HalfCheetah-v5's entry sets per_bin_std,
    # which must not reach a trial's knn baseline.
    entry = {"baseline_kwargs": {"per_bin_std": True}, "normalize_advantage": False}
    baselines = set()
    for env_id, n_actions in (("CartPole-v1", 0), ("Pendulum-v1", 1)):
        for _ in range(4):
            trial = study.ask()
            n_envs = zoo.suggest_n_envs(trial)
            params = zoo.sample_gpg_params(trial, n_actions, n_envs, {})
            env = make_vec_env(env_id, n_envs=n_envs)
            model = GPG("MlpPolicy", env, **{**entry, **params})
            assert model.episodes_per_rollout >= n_envs
            baselines.add(model.baseline)
            env.close()
            study.tell(trial, 0.0)
    assert baselines == {"group", "knn"}


#: The best HalfCheetah-v5 settings found by hand: the search space must hold them.
HAND_TUNED_HALFCHEETAH = {
    "n_envs": 8,
    "group_size": 4,
    "episodes_per_env": 1,
    "max_episode_steps": 200,
    "binning": "timestep",
    "bin_width": 1,
    "baseline": "group",
    "per_bin_std": True,
    "learning_rate": 3e-4,
    "lr_schedule": "linear",
    "n_epochs": 10,
    "batch_size_pow": 8,
    "clip_range": 0.2,
    "target_kl": 0.05,
    "ent_coef": 1e-8,
    "one_minus_gamma": 0.01,
    "max_grad_norm": 0.5,
    "net_width": 256,
    "net_depth": 2,
    "activation_fn": "relu",
    "ortho_init": False,
    "log_std_init": -2.0,
}


def test_search_space_holds_the_hand_tuned_halfcheetah_settings(recwarn):
    trial = optuna.trial.FixedTrial(HAND_TUNED_HALFCHEETAH)
    params = zoo.sample_gpg_params(trial, 6, zoo.suggest_n_envs(trial), {})
    # FixedTrial refuses a value outside a parameter's choices, and warns about one outside its range.
    messages = [str(warning.message) for warning in recwarn]
    assert not [message for message in messages if "out of the range" in message], messages
    assert trial.params == HAND_TUNED_HALFCHEETAH
    assert params["n_groups"] == 2 and params["group_size"] == 4 and params["batch_size"] == 256
    assert params["max_episode_steps"] == 200
    assert params["baseline_kwargs"] == {"per_bin_std": True} and params["normalize_advantage"] is False
    assert math.isclose(params["gamma"], 0.99) and params["target_kl"] == 0.05
    assert callable(params["learning_rate"]) and params["learning_rate"](0.5) == pytest.approx(1.5e-4)
    policy_kwargs = {"net_arch": [256, 256], "activation_fn": nn.ReLU, "ortho_init": False, "log_std_init": -2.0}
    assert params["policy_kwargs"] == policy_kwargs
    converted = zoo.convert_gpg_params(HAND_TUNED_HALFCHEETAH)
    assert converted["n_envs"] == 8 and converted["learning_rate"] == "lin_0.0003"


def test_converter_reads_the_first_search_space():
    # Studies made before width/depth, schedules and n_envs choices (acrobot-gpg, pendulum-gpg) still reload.
    old = {"n_envs": 8, "group_size": 8, "episodes_per_env": 2, "binning": "timestep", "bin_width": 2, "learning_rate": 1e-3}
    old |= {"n_epochs": 5, "batch_size_pow": 6, "clip_range": 0.2, "ent_coef": 1e-3, "one_minus_gamma": 0.01}
    old |= {"net_arch": "tiny", "activation_fn": "tanh"}
    converted = zoo.convert_gpg_params(old)
    assert converted["learning_rate"] == 1e-3 and converted["n_groups"] == 2 and converted["batch_size"] == 64
    assert converted["policy_kwargs"] == {"net_arch": [64], "activation_fn": nn.Tanh}


def test_sampler_refuses_envs_other_than_the_trials_choice():
    trial = optuna.create_study().ask()
    chosen = zoo.suggest_n_envs(trial)
    with pytest.raises(RuntimeError, match="tunable_n_envs"):
        zoo.sample_gpg_params(trial, 0, chosen + 1, {})


def test_heartbeat_storage_is_quiet(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        storage = zoo.heartbeat_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert storage.get_heartbeat_interval() == zoo.HEARTBEAT_INTERVAL
    journal = str(tmp_path / "study.log")
    assert zoo.heartbeat_storage(journal) == journal  # rl-zoo3 opens .log files as Optuna journals


def test_pruning_through_rl_zoo3_trial_eval_callback():
    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study: "optuna.Study", trial: "optuna.trial.FrozenTrial") -> bool:
            return True

    stopped_at = []

    def objective(trial: "optuna.Trial") -> float:
        model = GPG("MlpPolicy", "CartPole-v1", group_size=2, n_groups=1, n_epochs=1, seed=0)
        eval_env = make_vec_env("CartPole-v1", n_envs=1)
        callback = TrialEvalCallback(eval_env, trial, n_eval_episodes=1, eval_freq=20)
        model.learn(5000, callback=callback)
        stopped_at.append(model.num_timesteps)
        assert callback.is_pruned
        raise optuna.TrialPruned()

    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    # Learning stopped at the first evaluation, in the middle of a rollout.
    assert stopped_at == [20]


# ----------------------------------------------------------------------------- command lines


@pytest.fixture(scope="module")
def gpg_run(tmp_path_factory) -> tuple[Path, str]:
    """One tiny GPG training run on CartPole-v1, in a directory outside the repository."""
    cwd = tmp_path_factory.mktemp("zoo_gpg")
    output = run(
        "sb3_gpg.train",
        *("--algo", "gpg", "--env", "CartPole-v1", "-n", "3000", "--seed", "0"),
        *("--eval-freq", "1000", "--eval-episodes", "2", "-f", "logs", "--num-threads", "1"),
        cwd=cwd,
    )
    return cwd, output


@pytest.mark.slow
def test_train_gpg_uses_sb3_gpg_config(gpg_run):
    cwd, output = gpg_run
    assert f"Loading hyperparameters from: {zoo.config_path()}" in output
    run_dir = cwd / "logs" / "gpg" / "CartPole-v1_1"
    assert (run_dir / "CartPole-v1.zip").is_file()
    assert (run_dir / "evaluations.npz").is_file()
    config = saved_config(run_dir)
    assert config["group_size"] == 8 and config["n_groups"] == 2 and config["n_envs"] == 8
    assert GPG.load(run_dir / "CartPole-v1.zip").group_size == 8


@pytest.mark.slow
def test_train_ppo_through_sb3_gpg_entry(tmp_path):
    output = run(
        "sb3_gpg.train",
        *("--algo", "ppo", "--env", "CartPole-v1", "-n", "1000", "--seed", "0", "--eval-freq", "-1", "-f", "logs"),
        cwd=tmp_path,
    )
    assert re.search(r"Loading hyperparameters from: .*rl_zoo3.hyperparams.ppo\.yml", output)
    assert (tmp_path / "logs" / "ppo" / "CartPole-v1_1" / "CartPole-v1.zip").is_file()


@pytest.mark.slow
def test_enjoy_prints_episode_returns(gpg_run):
    cwd, _ = gpg_run
    output = run("sb3_gpg.enjoy", "--env", "CartPole-v1", "-f", "logs", "--no-render", "-n", "300", cwd=cwd)
    returns = [float(value) for value in re.findall(r"Episode Reward: ([-0-9.]+)", output)]
    assert len(returns) >= 1 and all(value > 0 for value in returns)
    assert "Mean reward:" in output


@pytest.mark.slow
def test_record_video_writes_mp4(gpg_run):
    cwd, _ = gpg_run
    run("sb3_gpg.cli", "record-video", "--env", "CartPole-v1", "-f", "logs", "-n", "60", "-o", "videos", cwd=cwd)
    videos = list((cwd / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    assert videos[0].read_bytes()[4:8] == b"ftyp"


@pytest.mark.slow
def test_plot_train_writes_image(gpg_run):
    cwd, _ = gpg_run
    output = run(
        "sb3_gpg.cli",
        "plot-train",
        "-a",
        "gpg",
        "-e",
        "CartPole-v1",
        "-f",
        "logs",
        "-w",
        "10",
        "--figure-dir",
        "plots",
        cwd=cwd,
    )
    image = cwd / "plots" / "training_episodic_reward.png"
    assert f"Saved figure to {Path('plots') / image.name}" in output
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_all_plots_writes_image_and_table(gpg_run):
    cwd, _ = gpg_run
    output = run(
        "sb3_gpg.cli",
        *("all-plots", "-a", "gpg", "-e", "CartPole-v1", "-f", "logs", "--no-million", "--figure-dir", "plots"),
        *("--figure-format", "svg"),
        cwd=cwd,
    )
    assert re.search(r"\|CartPole-v1 *\|[-0-9.]+ \+/- [0-9.]+\|", output), output
    assert (cwd / "plots" / "results_cartpole-v1.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.slow
def test_cli_usage_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sb3_gpg.cli"], cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert result.returncode == 2 and "record-video" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "sb3_gpg.cli", "fly"], cwd=tmp_path, env=_env(), capture_output=True, text=True
    )
    assert result.returncode != 0 and "unknown command 'fly'" in result.stderr


@pytest.mark.slow
def test_optimize_on_sqlite_then_reload_trials(tmp_path):
    storage = "sqlite:///study.db"  # relative to the working directory
    output = run(
        "sb3_gpg.train",
        *("--algo", "gpg", "--env", "CartPole-v1", "--storage", storage, "--study-name", "sqlite-study"),
        *("--n-trials", "3", "--seed", "0", "-f", "logs", *OPTIMIZE_FLAGS),
        cwd=tmp_path,
    )
    study = optuna.load_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="sqlite-study")
    states = {trial.state for trial in study.trials}
    assert len(study.trials) == 3
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}, output[-3000:]
    assert "Writing report to" in output
    # Reload the best trial, and trial 0 (which rl-zoo3 by itself would ignore: its test is `if trial_id`).
    numbers = sorted({study.best_trial.number, 0})
    for exp_id, number in enumerate(numbers, start=1):
        output = run(
            "sb3_gpg.train",
            *("--algo", "gpg", "--env", "CartPole-v1", "--storage", storage, "--study-name", "sqlite-study"),
            *("--trial-id", str(number), "-n", "300", "--eval-freq", "-1", "--seed", "0", "-f", "reload"),
            cwd=tmp_path,
        )
        assert "Loading from Optuna study..." in output
        check_reloaded(saved_config(tmp_path / "reload" / "gpg" / f"CartPole-v1_{exp_id}"), study.trials[number])


@pytest.mark.slow
def test_optimize_chooses_n_envs_in_a_journal_study_that_resumes(tmp_path):
    storage = "tuning/study.log"  # an Optuna journal file, as rl-zoo3 opens ".log" storages
    study_line = ("--algo", "gpg", "--env", "CartPole-v1", "--storage", storage, "--study-name", "journal-study")
    # Random trials first, then TPE resumes the study (seeded: the same choices on every run).
    for seed, n_trials, method in ((101, 2, "random"), (102, 1, "tpe")):
        run(
            "sb3_gpg.train",
            *study_line,
            *("--n-trials", str(n_trials), "--seed", str(seed), "--sampler", method, "--pruner", "median"),
            *("-f", "logs", "--optimization-log-path", "trials", *OPTIMIZE_FLAGS),
            cwd=tmp_path,
        )
    backend = optuna.storages.journal.JournalFileBackend(str(tmp_path / storage))
    study = optuna.load_study(storage=optuna.storages.JournalStorage(backend), study_name="journal-study")
    assert [trial.number for trial in study.trials] == [0, 1, 2]
    assert {trial.state for trial in study.trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    for trial in study.trials:
        n_envs = trial.params["n_envs"]
        assert n_envs in sampler.N_ENVS and trial.user_attrs["episodes_per_rollout"] >= n_envs
        # The trial trained on as many envs as it chose (rl-zoo3 saves each trial's best model).
        assert GPG.load(tmp_path / "trials" / f"trial_{trial.number}" / "best_model.zip").n_envs == n_envs
    # CartPole-v1's configuration has 8 envs; the trials chose their own.
    assert {trial.params["n_envs"] for trial in study.trials} != {8}

    output = run(
        "sb3_gpg.train",
        *study_line,
        *("--trial-id", "0", "-n", "300", "--eval-freq", "-1", "--seed", "0", "-f", "reload"),
        cwd=tmp_path,
    )
    assert f"Using {study.trials[0].params['n_envs']} environments" in output
    check_reloaded(saved_config(tmp_path / "reload" / "gpg" / "CartPole-v1_1"), study.trials[0])

    # -params n_envs:N keeps n_envs fixed while tuning (a study of its own: the parameter has one choice).
    run(
        "sb3_gpg.train",
        *("--algo", "gpg", "--env", "CartPole-v1", "--storage", storage, "--study-name", "fixed-envs"),
        *("--n-trials", "1", "--seed", "100", "-params", "n_envs:2", "-f", "logs", *OPTIMIZE_FLAGS),
        cwd=tmp_path,
    )
    fixed = optuna.load_study(storage=optuna.storages.JournalStorage(backend), study_name="fixed-envs")
    assert fixed.trials[0].params["n_envs"] == 2
    assert fixed.trials[0].distributions["n_envs"].choices == (2,)


def needs_postgres(test):
    """Mark a test that needs the PostgreSQL server of ``.ci/postgres.sh`` (skipped without one); it runs workers (slow)."""
    skip = pytest.mark.skipif(
        not os.environ.get("SB3_GPG_PG_URL"),
        reason='needs a PostgreSQL server in SB3_GPG_PG_URL: run `eval "$(bash .ci/postgres.sh)"` first (as .ci/run does)',
    )
    return pytest.mark.slow(pytest.mark.postgres(skip(test)))


@needs_postgres
def test_two_workers_share_a_postgres_study(tmp_path):
    url = os.environ["SB3_GPG_PG_URL"]
    study_name = f"sb3-gpg-test-{uuid.uuid4().hex[:12]}"
    n_trials = 2  # per worker
    # Create the study (and, on a fresh database, Optuna's tables) before the workers start.
    optuna.create_study(storage=url, study_name=study_name, direction="maximize")
    try:
        workers = []
        for seed in (1, 2):
            command = [
                *(sys.executable, "-m", "sb3_gpg.train", "--algo", "gpg", "--env", "CartPole-v1"),
                *("--storage", url, "--study-name", study_name, "--n-trials", str(n_trials)),
                *("--seed", str(seed), "-f", f"logs_{seed}", *OPTIMIZE_FLAGS),
            ]
            workers.append(
                subprocess.Popen(
                    command, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
            )
        outputs = []
        for worker in workers:
            output, _ = worker.communicate(timeout=240)
            assert worker.returncode == 0, output[-6000:]
            outputs.append(output)

        study = optuna.load_study(storage=url, study_name=study_name)
        numbers = [trial.number for trial in study.trials]
        assert len(study.trials) == 2 * n_trials
        assert sorted(numbers) == list(range(2 * n_trials))
        assert {trial.state for trial in study.trials} <= {
            optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED,
        }
        # Every trial was run by exactly one worker, n_trials by each.
        reported = [[int(number) for number, _ in TRIAL_LINE.findall(output)] for output in outputs]
        assert [len(numbers) for numbers in reported] == [n_trials, n_trials], outputs
        assert sorted(reported[0] + reported[1]) == list(range(2 * n_trials))

        best = study.best_trial
        output = run(
            "sb3_gpg.train",
            *("--algo", "gpg", "--env", "CartPole-v1", "--storage", url, "--study-name", study_name),
            *("--trial-id", str(best.number), "-n", "300", "--eval-freq", "-1", "--seed", "0", "-f", "reload"),
            cwd=tmp_path,
        )
        assert "Loading from Optuna study..." in output
        check_reloaded(saved_config(tmp_path / "reload" / "gpg" / "CartPole-v1_1"), best)
    finally:
        optuna.delete_study(storage=url, study_name=study_name)


@needs_postgres
def test_worker_killed_mid_trial_leaves_study_usable(tmp_path):
    url = os.environ["SB3_GPG_PG_URL"]
    study_name = f"sb3-gpg-kill-{uuid.uuid4().hex[:12]}"
    optuna.create_study(storage=url, study_name=study_name, direction="maximize")
    # Fast heartbeats so that the killed worker's trial goes stale within the test.
    env = {**_env(), "SB3_GPG_OPTUNA_HEARTBEAT": "1", "SB3_GPG_OPTUNA_GRACE": "3"}

    def worker(seed: int, n_trials: int, n_steps: str) -> subprocess.Popen:
        command = [
            *(sys.executable, "-m", "sb3_gpg.train", "--algo", "gpg", "--env", "CartPole-v1"),
            *("--storage", url, "--study-name", study_name, "--n-trials", str(n_trials)),
            *("--seed", str(seed), "-f", f"logs_{seed}", "--optimize", "-n", n_steps, "--n-evaluations", "2"),
            *("--n-startup-trials", "2", "--no-optim-plots", "--eval-episodes", "2"),
        ]
        return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    try:
        victim = worker(1, 5, "200000")  # long trials: it is surely mid-trial when killed
        deadline = time.time() + 120
        study = optuna.load_study(storage=url, study_name=study_name)
        while time.time() < deadline and not any(t.state == optuna.trial.TrialState.RUNNING for t in study.trials):
            time.sleep(0.5)
        time.sleep(2)
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
        killed = [t.number for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
        assert len(killed) == 1, [t.state for t in study.trials]

        time.sleep(4)  # past the grace period: the next trial any worker starts marks it failed
        survivor = worker(2, 2, "1500")
        output, _ = survivor.communicate(timeout=240)
        assert survivor.returncode == 0, output[-6000:]

        study = optuna.load_study(storage=url, study_name=study_name)
        states = {t.number: t.state for t in study.trials}
        assert states[killed[0]] == optuna.trial.TrialState.FAIL
        assert sorted(states) == list(range(len(states))) and len(states) == 3
        others = [state for number, state in states.items() if number != killed[0]]
        assert set(others) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    finally:
        optuna.delete_study(storage=url, study_name=study_name)


@pytest.mark.slow
def test_console_script(tmp_path):
    import shutil

    script = shutil.which("sb3-gpg", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if script is None:
        pytest.skip("the sb3-gpg console script is not installed (entry point in setup.cfg, then pip install -e .)")
    result = subprocess.run([script, "--help"], cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0 and "plot-train" in result.stdout
