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
    for key in ("group_size", "n_groups", "n_envs", "binning", "bin_width", "batch_size", "n_epochs", "clip_range"):
        assert config[key] == expected[key], key
    for key in ("learning_rate", "gamma", "ent_coef"):
        assert math.isclose(config[key], expected[key]), key
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
    text = zoo.config_path().read_text()
    for env_id, entry in config.items():
        # Each entry says whether it was tuned.
        header = next(line for line in text.splitlines() if line.startswith(f"{env_id}:"))
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
            ppo_id = env_id.replace("-v5", "-v4") if env_id not in ppo else env_id
            assert entry["n_timesteps"] == ppo[ppo_id]["n_timesteps"], env_id
            assert entry.get("n_envs", 1) == ppo[ppo_id].get("n_envs", 1), env_id
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


@pytest.mark.parametrize("n_envs", [1, 3, 8, 16, 32])
def test_sampler_proposes_only_valid_combinations(n_envs):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=n_envs), direction="maximize")
    for _ in range(100):
        trial = study.ask()
        params = zoo.sample_gpg_params(trial, 0, n_envs, {})
        assert params["group_size"] >= 2
        assert params["n_groups"] * params["group_size"] >= n_envs
        assert set(params) <= GPG_ARGS, set(params) - GPG_ARGS
        # The converter rebuilds the same hyperparameters from the stored trial (plus n_envs for rl-zoo3).
        reloaded = zoo.convert_gpg_params(trial.params)
        assert reloaded.pop("n_envs") == n_envs
        assert reloaded == params
        study.tell(trial, 0.0)
    # The proposals are accepted by GPG.
    env = make_vec_env("CartPole-v1", n_envs=n_envs)
    GPG("MlpPolicy", env, **params)
    env.close()


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


def test_train_gpg_uses_sb3_gpg_config(gpg_run):
    cwd, output = gpg_run
    assert f"Loading hyperparameters from: {zoo.config_path()}" in output
    run_dir = cwd / "logs" / "gpg" / "CartPole-v1_1"
    assert (run_dir / "CartPole-v1.zip").is_file()
    assert (run_dir / "evaluations.npz").is_file()
    config = saved_config(run_dir)
    assert config["group_size"] == 8 and config["n_groups"] == 2 and config["n_envs"] == 8
    assert GPG.load(run_dir / "CartPole-v1.zip").group_size == 8


def test_train_ppo_through_sb3_gpg_entry(tmp_path):
    output = run(
        "sb3_gpg.train",
        *("--algo", "ppo", "--env", "CartPole-v1", "-n", "1000", "--seed", "0", "--eval-freq", "-1", "-f", "logs"),
        cwd=tmp_path,
    )
    assert re.search(r"Loading hyperparameters from: .*rl_zoo3.hyperparams.ppo\.yml", output)
    assert (tmp_path / "logs" / "ppo" / "CartPole-v1_1" / "CartPole-v1.zip").is_file()


def test_enjoy_prints_episode_returns(gpg_run):
    cwd, _ = gpg_run
    output = run("sb3_gpg.enjoy", "--env", "CartPole-v1", "-f", "logs", "--no-render", "-n", "300", cwd=cwd)
    returns = [float(value) for value in re.findall(r"Episode Reward: ([-0-9.]+)", output)]
    assert len(returns) >= 1 and all(value > 0 for value in returns)
    assert "Mean reward:" in output


def test_record_video_writes_mp4(gpg_run):
    cwd, _ = gpg_run
    run("sb3_gpg.cli", "record-video", "--env", "CartPole-v1", "-f", "logs", "-n", "60", "-o", "videos", cwd=cwd)
    videos = list((cwd / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    assert videos[0].read_bytes()[4:8] == b"ftyp"


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


def test_cli_usage_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sb3_gpg.cli"], cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert result.returncode == 2 and "record-video" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "sb3_gpg.cli", "fly"], cwd=tmp_path, env=_env(), capture_output=True, text=True
    )
    assert result.returncode != 0 and "unknown command 'fly'" in result.stderr


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


def needs_postgres(test):
    """Mark a test that needs the PostgreSQL server of ``.ci/postgres.sh`` (skipped without one)."""
    skip = pytest.mark.skipif(
        not os.environ.get("SB3_GPG_PG_URL"),
        reason='needs a PostgreSQL server in SB3_GPG_PG_URL: run `eval "$(bash .ci/postgres.sh)"` first (as .ci/run does)',
    )
    return pytest.mark.postgres(skip(test))


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


def test_console_script(tmp_path):
    import shutil

    script = shutil.which("sb3-gpg", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if script is None:
        pytest.skip("the sb3-gpg console script is not installed (entry point in setup.cfg, then pip install -e .)")
    result = subprocess.run([script, "--help"], cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0 and "plot-train" in result.stdout
