"""
GPG against SB3 PPO through rl-zoo3: learning benchmark and throughput scaling.

**Sweep** (default mode). For every task, seed and algorithm, one run trains the model that
rl-zoo3's ``ExperimentManager`` builds (GPG from sb3-gpg's ``hyperparams/gpg.yml``, PPO from
rl-zoo3's tuned ``ppo.yml``; both with the same env-step budget, by default rl-zoo3's PPO budget
of the task) and measures:

* the final deterministic evaluation return (``--eval-episodes`` fresh episodes, default 20);
* an evaluation curve (``--curve-episodes`` episodes every ``--eval-freq`` env steps, and at step
  0) and its area, normalized by the budget (the mean evaluation return over training);
* env steps and training wall-clock to the task's threshold (``--threshold``, else the env
  spec's ``reward_threshold``, else :data:`EXTRA_THRESHOLDS`): the first evaluation whose mean
  return reaches it;
* steps per second and the time split (env, policy inference, advantage estimation, gradient
  updates, other), from timers wrapped around the VecEnv's ``step``/``reset``/``env_method``, the
  policy's ``forward``, the rollout buffer's ``compute_returns_and_advantage`` and the model's
  ``train``; evaluation time is subtracted from the training wall-clock;
* the parameter count, and the peak resident set size of the run's own process
  (``getrusage(RUSAGE_SELF).ru_maxrss``: each run is a separate Python process, so the number
  includes the interpreter, torch and rl-zoo3, whose share is recorded as ``rss_imports_mib``).

Every run is a subprocess of this script (``--n-jobs`` at a time) that writes its
``result.json`` atomically when it ends; a restarted sweep skips the runs whose result is there.
The output folder then gets ``results.csv``/``results.json`` (one row per run), ``curves.csv``,
learning-curve PNGs, ``aggregate.json`` (interquartile mean of normalized scores and probability
of improvement, with stratified-bootstrap confidence intervals) and ``benchmark.md`` (rl-zoo3's
table format, then the details).

**Scaling** (``--scaling``). Steps per second of GPG and PPO (same actor network, ``n_epochs`` and
minibatch size) for several ``n_envs`` with ``DummyVecEnv`` and ``SubprocVecEnv``, against the
rate of the same VecEnv stepped with random actions (the ceiling); writes ``scaling.csv`` and
``scaling.md``.

Usage::

    python scripts/benchmark.py --out benchmarks/gpg_vs_ppo --n-jobs 8
    python scripts/benchmark.py --smoke --out /tmp/smoke
    python scripts/benchmark.py --scaling --out benchmarks/scaling
"""

import argparse
import csv
import dataclasses
import datetime
import functools
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parent.parent

DEFAULT_TASKS = (
    "CartPole-v1",
    "Acrobot-v1",
    "Pendulum-v1",
    "LunarLander-v3",
    "LunarLanderContinuous-v3",
    "HalfCheetah-v5",
    "Hopper-v5",
)
ALGOS = ("gpg", "ppo")

#: Thresholds of tasks whose env spec has no ``reward_threshold``. Pendulum-v1: -200 is a policy
#: that swings up and holds the pendulum in nearly every episode (random actions: about -1200).
EXTRA_THRESHOLDS: dict[str, float] = {"Pendulum-v1": -200.0}

#: Return of uniformly random actions (lower end of the score normalization), measured with
#: :func:`random_score` (100 episodes, seed 0). Other tasks are measured when a sweep needs them.
RANDOM_SCORES: dict[str, float] = {
    "CartPole-v1": 23.7,
    "Acrobot-v1": -497.1,
    "Pendulum-v1": -1207.6,
    "LunarLander-v3": -192.0,
    "LunarLanderContinuous-v3": -212.7,
    "HalfCheetah-v5": -282.5,
    "Hopper-v5": 16.7,
}

#: ``--smoke``: one seed on CartPole-v1 with a tiny budget.
SMOKE_TASKS = ("CartPole-v1",)
SMOKE_TIMESTEPS = 3000
SMOKE_EVAL_FREQ = 1000
SMOKE_CURVE_EPISODES = 5
SMOKE_SCALING_N_ENVS = (1, 2)
SMOKE_SCALING_STEPS = 1024
SMOKE_SCALING_ROLLOUT = 256

#: Seed offsets of the evaluation envs (the training envs use the run's seed).
CURVE_SEED_OFFSET = 20_000
FINAL_SEED_OFFSET = 10_000

#: Time-split columns: timer keys added into each one.
TIME_SPLIT: dict[str, tuple[str, ...]] = {
    "env": ("env_step", "env_reset", "env_method"),
    "inference": ("inference",),
    "advantages": ("advantages",),
    "updates": ("updates",),
}


# ----------------------------------------------------------------------------- small helpers


def write_json_atomic(path: Path, data: Any) -> None:
    """
    Write JSON so that ``path`` holds either its old content or the complete new one.

    Parameters
    ----------
    path : Path
        Destination file.
    data : Any
        JSON-serializable object.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as file:
        json.dump(data, file, indent=2, default=str)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    """
    Write a text file atomically (temporary file, then rename).

    Parameters
    ----------
    path : Path
        Destination file.
    text : str
        Content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_json(path: Path) -> Any | None:
    """
    Read a JSON file.

    Parameters
    ----------
    path : Path
        File to read.

    Returns
    -------
    Any | None
        The content, or ``None`` if the file is missing or unreadable.
    """
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def peak_rss_mib(who: int) -> float:
    """
    Peak resident set size of this process or of its largest waited-for child.

    Parameters
    ----------
    who : int
        ``resource.RUSAGE_SELF`` or ``resource.RUSAGE_CHILDREN``.

    Returns
    -------
    float
        Peak RSS in MiB (``ru_maxrss`` is in KiB on Linux, in bytes on macOS).
    """
    value = resource.getrusage(who).ru_maxrss
    return value / 2**20 if sys.platform == "darwin" else value / 1024


def format_steps(n: float) -> str:
    """
    Env steps in rl-zoo3's ``benchmark.md`` style (``100k``, ``1M``).

    Parameters
    ----------
    n : float
        Number of env steps.

    Returns
    -------
    str
        Thousands below a million, millions above.
    """
    if n < 1e6:
        return f"{n / 1e3:g}k"
    return f"{n / 1e6:g}M"


def format_duration(seconds: float) -> str:
    """
    Format a duration as ``H:MM:SS``.

    Parameters
    ----------
    seconds : float
        Duration.

    Returns
    -------
    str
        The formatted duration.
    """
    return str(datetime.timedelta(seconds=round(max(seconds, 0.0))))


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool] | None = None) -> str:
    """
    A Markdown table, numeric columns right-aligned.

    Parameters
    ----------
    header : Sequence[str]
        Column names.
    rows : Iterable[Sequence[Any]]
        Cells (converted with ``str``).
    numeric : Sequence[bool] | None
        Which columns are right-aligned (default: none).

    Returns
    -------
    str
        The table, one line per row, with a trailing newline.
    """
    numeric = numeric or [False] * len(header)
    lines = ["|" + "|".join(header) + "|", "|" + "|".join("---:" if right else "---" for right in numeric) + "|"]
    lines += ["|" + "|".join(str(cell) for cell in row) + "|" for row in rows]
    return "\n".join(lines) + "\n"


def versions() -> dict[str, str]:
    """
    Versions of the software and machine the benchmark runs on.

    Returns
    -------
    dict[str, str]
        Package versions, Python, platform, CPU count and the repository's git commit.
    """
    from importlib import metadata

    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": str(os.cpu_count())}
    for package in ("sb3-gpg", "stable_baselines3", "rl_zoo3", "torch", "gymnasium", "numpy", "mujoco", "box2d"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=10)
            info["git_commit"] = commit.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return info


# ----------------------------------------------------------------------------- statistics


def interquartile_mean(values: np.ndarray) -> float:
    """
    Interquartile mean: the mean of the values left after dropping the lowest and highest 25%.

    ``floor(n / 4)`` values are dropped at each end (as ``scipy.stats.trim_mean(values, 0.25)``).

    Parameters
    ----------
    values : np.ndarray
        Scores (any shape; flattened).

    Returns
    -------
    float
        The interquartile mean (NaN for no values).
    """
    flat = np.sort(np.asarray(values, dtype=float).ravel())
    if flat.size == 0:
        return float("nan")
    cut = flat.size // 4
    return float(flat[cut : flat.size - cut].mean())


def probability_of_improvement(x: Mapping[str, np.ndarray], y: Mapping[str, np.ndarray]) -> float:
    """
    Probability that a run of X scores higher than a run of Y on a random task (ties count half).

    For each task, the Mann-Whitney statistic ``P(X > Y) + P(X = Y) / 2`` over all pairs of runs;
    then the mean over the tasks both hold.

    Parameters
    ----------
    x, y : Mapping[str, np.ndarray]
        Scores of the runs of each algorithm, by task.

    Returns
    -------
    float
        The probability (NaN when X and Y share no task).
    """
    per_task = []
    for task in sorted(set(x) & set(y)):
        a = np.asarray(x[task], dtype=float)[:, None]
        b = np.asarray(y[task], dtype=float)[None, :]
        if a.size and b.size:
            per_task.append(float(np.mean((a > b) + 0.5 * (a == b))))
    return float(np.mean(per_task)) if per_task else float("nan")


def stratified_bootstrap(
    statistic: Callable[..., float],
    samples: Sequence[Mapping[str, np.ndarray]],
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """
    Point estimate and percentile confidence interval of a statistic, by stratified bootstrap.

    Each resample draws, for every task (stratum) and every sample set independently, as many
    runs as it has, with replacement; the statistic is computed on each resample.

    Parameters
    ----------
    statistic : Callable[..., float]
        Function of ``len(samples)`` mappings task -> run scores.
    samples : Sequence[Mapping[str, np.ndarray]]
        The sample sets (one per algorithm argument of ``statistic``).
    reps : int
        Number of bootstrap resamples.
    confidence : float
        Coverage of the interval.
    seed : int
        Seed of the resampling.

    Returns
    -------
    tuple[float, float, float]
        The statistic on the data, and the lower and upper ends of the interval.
    """
    rng = np.random.default_rng(seed)
    arrays = [{task: np.asarray(scores, dtype=float) for task, scores in sample.items()} for sample in samples]
    point = statistic(*arrays)
    values = np.empty(reps)
    for rep in range(reps):
        resampled = [
            {task: scores[rng.integers(0, len(scores), size=len(scores))] for task, scores in sample.items()}
            for sample in arrays
        ]
        values[rep] = statistic(*resampled)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(values, [alpha, 1.0 - alpha]) if np.isfinite(values).any() else (np.nan, np.nan)
    return float(point), float(low), float(high)


def curve_area(steps: Sequence[float], returns: Sequence[float], budget: float) -> float:
    """
    Area under an evaluation curve over ``[0, budget]``, divided by ``budget``.

    The curve is linear between evaluations, flat before the first and after the last; a point
    past the budget is used to interpolate the value at the budget. The result is the mean
    evaluation return over training, in return units.

    Parameters
    ----------
    steps : Sequence[float]
        Env steps of the evaluations.
    returns : Sequence[float]
        Mean evaluation return at each.
    budget : float
        Env-step budget (> 0).

    Returns
    -------
    float
        The normalized area (NaN without evaluations).
    """
    x = np.asarray(steps, dtype=float)
    y = np.asarray(returns, dtype=float)
    if x.size == 0:
        return float("nan")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    grid = np.unique(np.concatenate([[0.0], x[x < budget], [float(budget)]]))
    values = np.interp(grid, x, y)
    return float(np.sum(np.diff(grid) * (values[1:] + values[:-1]) / 2.0) / budget)


def first_crossing(curve: Sequence[Mapping[str, Any]], threshold: float | None) -> dict[str, Any] | None:
    """
    The first evaluation whose mean return reaches a threshold.

    Parameters
    ----------
    curve : Sequence[Mapping[str, Any]]
        Evaluations in training order, each with ``mean``.
    threshold : float | None
        Threshold (``None``: never reached).

    Returns
    -------
    dict[str, Any] | None
        That evaluation, or ``None``.
    """
    if threshold is None:
        return None
    for point in curve:
        if point["mean"] >= threshold:
            return dict(point)
    return None


# ----------------------------------------------------------------------------- timers


class Timers:
    """Wall-clock totals of wrapped methods, by key."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.started: dict[str, float] = {}

    def add(self, key: str, seconds: float) -> None:
        """
        Add time to a key.

        Parameters
        ----------
        key : str
            Timer name.
        seconds : float
            Elapsed time.
        """
        self.totals[key] += seconds
        self.calls[key] += 1

    def wrap(self, obj: Any, method: str, key: str) -> None:
        """
        Replace ``obj.method`` by a timed version (an instance attribute shadowing the method).

        Parameters
        ----------
        obj : Any
            Object whose method is timed.
        method : str
            Method name.
        key : str
            Timer name.
        """
        original = getattr(obj, method)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            self.started[key] = start
            try:
                return original(*args, **kwargs)
            finally:
                self.add(key, time.perf_counter() - start)

        setattr(obj, method, timed)


def time_split(timers: Timers, train_wall: float) -> dict[str, float]:
    """
    Seconds of training spent in each part of :data:`TIME_SPLIT`, plus ``other`` (the rest).

    Parameters
    ----------
    timers : Timers
        Timers of the run.
    train_wall : float
        Training wall-clock, evaluation excluded.

    Returns
    -------
    dict[str, float]
        Seconds per part; they add up to ``train_wall``.
    """
    split = {part: sum(timers.totals.get(key, 0.0) for key in keys) for part, keys in TIME_SPLIT.items()}
    split["other"] = train_wall - sum(split.values())
    return split


def instrument(model: Any, timers: Timers) -> None:
    """
    Time a model's training (learn, rollouts, updates), its VecEnv, policy forward and advantages.

    Parameters
    ----------
    model : Any
        An SB3 on-policy model (PPO, GPG) with its env.
    timers : Timers
        Where the times go.
    """
    timers.wrap(model, "learn", "learn")
    timers.wrap(model, "collect_rollouts", "rollouts")
    timers.wrap(model, "train", "updates")
    timers.wrap(model.policy, "forward", "inference")
    timers.wrap(model.rollout_buffer, "compute_returns_and_advantage", "advantages")
    env = model.get_env()
    for method, key in (("step", "env_step"), ("reset", "env_reset"), ("env_method", "env_method")):
        timers.wrap(env, method, key)


# ----------------------------------------------------------------------------- tasks and configurations


def zoo_hyperparams_dir() -> Path:
    """
    Folder of rl-zoo3's default configuration files (found without importing rl-zoo3).

    Returns
    -------
    Path
        ``rl_zoo3/hyperparams`` of the installed package.
    """
    spec = importlib.util.find_spec("rl_zoo3")
    if spec is None or spec.origin is None:
        raise ImportError("rl-zoo3 is not installed: pip install 'sb3-gpg[zoo]'")
    package = Path(spec.origin).parent
    return package / "hyperparams" if (package / "hyperparams").is_dir() else package.parent / "hyperparams"


def config_file(algo: str) -> Path:
    """
    Default rl-zoo3 configuration file of an algorithm (sb3-gpg's for GPG, rl-zoo3's otherwise).

    Parameters
    ----------
    algo : str
        Algorithm name.

    Returns
    -------
    Path
        The ``.yml`` file.
    """
    if algo == "gpg":
        from sb3_gpg.zoo import config_path

        return config_path("gpg")
    return zoo_hyperparams_dir() / f"{algo}.yml"


def _version(env_id: str) -> tuple[str, int] | None:
    name, sep, version = env_id.rpartition("-v")
    return (name, int(version)) if sep and version.isdigit() else None


def zoo_entry(algo: str, env_id: str) -> tuple[Path, str, dict[str, Any]]:
    """
    The configuration entry rl-zoo3 would use for a task, with a fallback for newer env versions.

    rl-zoo3 takes the entry named like the env, else ``default``. When the file has no entry for
    this version of the env (``ppo.yml`` has ``HalfCheetah-v4``, not ``-v5``), the entry of the
    newest older version of the same env is used instead, as in ``hyperparams/gpg.yml``.

    Parameters
    ----------
    algo : str
        Algorithm name.
    env_id : str
        Gymnasium id.

    Returns
    -------
    tuple[Path, str, dict[str, Any]]
        The file, the name of the entry used and the entry.
    """
    path = config_file(algo)
    with open(path) as file:
        entries = yaml.safe_load(file)
    if env_id in entries:
        return path, env_id, dict(entries[env_id])
    wanted = _version(env_id)
    if wanted is not None:
        older = [(v[1], key) for key in entries if (v := _version(key)) is not None and v[0] == wanted[0] and v[1] < wanted[1]]
        if older:
            key = max(older)[1]
            return path, key, dict(entries[key])
    if "default" in entries:
        return path, "default", dict(entries["default"])
    raise KeyError(f"{path} has no entry for {env_id} and no default entry")


def random_score(env_id: str, episodes: int = 100, seed: int = 0) -> float:
    """
    Mean return of uniformly random actions.

    Parameters
    ----------
    env_id : str
        Gymnasium id.
    episodes : int
        Number of episodes.
    seed : int
        Seed of the env and of the action space.

    Returns
    -------
    float
        The mean episode return.
    """
    import gymnasium as gym

    env = gym.make(env_id)
    env.action_space.seed(seed)
    total = 0.0
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
    env.close()
    return total / episodes


@dataclasses.dataclass
class Task:
    """A benchmark task: env, budget, threshold and score normalization."""

    env_id: str
    n_timesteps: int
    budget_source: str
    eval_freq: int
    threshold: float | None
    threshold_source: str
    random_score: float | None = None


def parse_env_values(items: Sequence[str] | None, option: str, kind: Callable[[str], Any]) -> dict[str, Any]:
    """
    Parse repeated ``ENV=VALUE`` options.

    Parameters
    ----------
    items : Sequence[str] | None
        The option's values, as given.
    option : str
        The option's name, for error messages.
    kind : Callable[[str], Any]
        Converts a value (``int`` or ``float``).

    Returns
    -------
    dict[str, Any]
        Value by env id.
    """
    values = {}
    for item in items or []:
        env_id, sep, value = item.partition("=")
        try:
            if not sep or not env_id:
                raise ValueError
            values[env_id] = kind(value)
        except ValueError:
            raise SystemExit(f"{option} takes ENV=VALUE (a {kind.__name__} value), not {item!r}") from None
        if kind is int and values[env_id] < 1:
            raise SystemExit(f"{option} {item!r}: the value must be >= 1")
    return values


def resolve_tasks(args: argparse.Namespace) -> list[Task]:
    """
    Check that every task's env can be created, and find its budget and threshold.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command line.

    Returns
    -------
    list[Task]
        The tasks, in command-line order.
    """
    import gymnasium as gym

    overrides = parse_env_values(args.threshold, "--threshold", float)
    budgets = parse_env_values(args.budget, "--budget", int)
    unknown = sorted(set(budgets) - set(args.tasks))
    if unknown:
        raise SystemExit(f"--budget names {', '.join(unknown)}, which is not among --tasks")
    tasks = []
    for env_id in args.tasks:
        try:
            gym.make(env_id).close()
        except Exception as error:
            hint = " (MuJoCo envs need: pip install 'gymnasium[mujoco]')" if "mujoco" in repr(error).lower() else ""
            raise SystemExit(f"cannot create {env_id}: {error!r}{hint}") from error
        if env_id in budgets:
            _, key, entry = zoo_entry("ppo", env_id)
            budget = budgets[env_id]
            source = f"--budget (rl-zoo3 ppo.yml [{key}]: {float(entry['n_timesteps']):.0f})"
        elif args.n_timesteps:
            budget, source = int(args.n_timesteps), "--n-timesteps"
        else:
            _, key, entry = zoo_entry("ppo", env_id)
            budget = int(float(entry["n_timesteps"]) * args.budget_scale)
            source = f"rl-zoo3 ppo.yml [{key}]" + (f" x {args.budget_scale:g}" if args.budget_scale != 1 else "")
        spec_threshold = gym.spec(env_id).reward_threshold
        if env_id in overrides:
            threshold, threshold_source = overrides[env_id], "--threshold"
        elif spec_threshold is not None:
            threshold, threshold_source = float(spec_threshold), "env spec reward_threshold"
        elif env_id in EXTRA_THRESHOLDS:
            threshold, threshold_source = EXTRA_THRESHOLDS[env_id], "benchmark.py EXTRA_THRESHOLDS"
        else:
            threshold, threshold_source = None, "none"
        eval_freq = int(args.eval_freq) if args.eval_freq else max(1, budget // 20)
        random = RANDOM_SCORES.get(env_id)
        if random is None and threshold is not None:
            random = random_score(env_id, episodes=20)
        tasks.append(Task(env_id, budget, source, eval_freq, threshold, threshold_source, random))
    return tasks


# ----------------------------------------------------------------------------- one run (worker process)


def run_key(spec: Mapping[str, Any]) -> dict[str, Any]:
    """
    The settings that identify a run: a finished run is reused only if they all match.

    Parameters
    ----------
    spec : Mapping[str, Any]
        Run specification.

    Returns
    -------
    dict[str, Any]
        The identifying subset.
    """
    names = ("algo", "env_id", "seed", "n_timesteps", "eval_freq", "eval_episodes", "curve_episodes", "vec_env", "device")
    # The configuration entry too: a run trained before hyperparams/gpg.yml changed is redone.
    return {**{name: spec[name] for name in names}, "config": _config_identity(spec["config"])}


def _config_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """
    A configuration as it identifies a run: its entry and values, not the file's absolute path.

    The path differs between checkouts and virtual environments of the same code (a fresh clone
    resumes the committed results); result files written before this rule still hold it.

    Parameters
    ----------
    config : Mapping[str, Any]
        ``{"file": ..., "entry": ..., "values": ...}`` of a run specification or stored key.

    Returns
    -------
    dict[str, Any]
        The configuration without ``file``.
    """
    return {name: value for name, value in config.items() if name != "file"}


def _periodic_evaluation(eval_env: Any, eval_freq: int, n_episodes: int, budget: int, timers: Timers) -> Any:
    """
    Callback evaluating the deterministic policy every ``eval_freq`` env steps (and at step 0).

    Parameters
    ----------
    eval_env : Any
        Evaluation VecEnv (its ``VecNormalize`` statistics are copied from the training env).
    eval_freq : int
        Env steps between evaluations.
    n_episodes : int
        Episodes per evaluation.
    budget : int
        No evaluation is scheduled past this many env steps.
    timers : Timers
        Evaluation time goes to ``evaluation``; ``started["learn"]`` is the training start.

    Returns
    -------
    BaseCallback
        The callback; its ``curve`` lists the evaluations.
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import sync_envs_normalization

    class PeriodicEvaluation(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.curve: list[dict[str, Any]] = []
            self.next_eval = 0

        def _evaluate_if_due(self) -> None:
            if self.num_timesteps < self.next_eval or self.next_eval > budget:
                return
            start = time.perf_counter()
            # Training wall-clock so far: since learn() started, minus the earlier evaluations.
            train_wall = start - timers.started["learn"] - timers.totals.get("evaluation", 0.0)
            sync_envs_normalization(self.model.get_env(), eval_env)
            returns, _ = evaluate_policy(
                self.model, eval_env, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True
            )
            timers.add("evaluation", time.perf_counter() - start)
            self.curve.append(
                {
                    "nominal": self.next_eval,
                    "steps": int(self.num_timesteps),
                    "wall_s": train_wall,
                    "mean": float(np.mean(returns)),
                    "std": float(np.std(returns)),
                    "episodes": len(returns),
                }
            )
            while self.next_eval <= self.num_timesteps:
                self.next_eval += eval_freq

        def _on_training_start(self) -> None:
            self._evaluate_if_due()

        def _on_step(self) -> bool:
            self._evaluate_if_due()
            return True

    return PeriodicEvaluation()


def _log_means(progress_csv: Path) -> dict[str, float]:
    """Mean of each numeric column of an SB3 ``progress.csv``."""
    if not progress_csv.is_file():
        return {}
    columns: dict[str, list[float]] = defaultdict(list)
    with open(progress_csv, newline="") as file:
        for row in csv.DictReader(file):
            for key, value in row.items():
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    continue
                if math.isfinite(number):
                    columns[key].append(number)
    return {key: float(np.mean(values)) for key, values in sorted(columns.items()) if values}


def run_worker(spec_file: Path) -> None:
    """
    Train and evaluate one (algorithm, task, seed) run and write its ``result.json``.

    The model is built by rl-zoo3's ``ExperimentManager`` (the same preprocessing of the
    configuration entry as ``python -m sb3_gpg.train``), then trained by ``ExperimentManager.learn``
    with this script's evaluation callback and timers attached.

    Parameters
    ----------
    spec_file : Path
        The run's ``spec.json`` (written by the sweep); the result goes beside it.
    """
    spec = json.loads(spec_file.read_text())
    run_dir = spec_file.parent
    start_process = time.perf_counter()

    import torch as th
    from rl_zoo3.exp_manager import ExperimentManager
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import sync_envs_normalization

    from sb3_gpg import zoo

    zoo.register()
    th.set_num_threads(spec["torch_threads"])
    set_random_seed(spec["seed"])
    rss_imports = peak_rss_mib(resource.RUSAGE_SELF)

    # The entry read when the sweep was planned (and keyed), under the env's name, where rl-zoo3
    # looks it up: the run trains exactly what its key says, even for a fallback entry.
    config = str(run_dir / f"{spec['algo']}.yml")
    with open(config, "w") as file:
        yaml.safe_dump({spec["env_id"]: spec["config"]["values"]}, file)
    manager = ExperimentManager(
        argparse.Namespace(**spec),
        spec["algo"],
        spec["env_id"],
        str(run_dir / "zoo"),
        n_timesteps=spec["n_timesteps"],
        eval_freq=0,  # this script evaluates (timed, and at its own schedule)
        save_freq=-1,
        seed=spec["seed"],
        log_interval=1,
        verbose=0,
        vec_env_type=spec["vec_env"],
        device=spec["device"],
        config=config,
    )
    setup_start = time.perf_counter()
    setup = manager.setup_experiment()
    assert setup is not None
    model, saved_hyperparams = setup
    logger = configure(str(run_dir), ["csv"])
    model.set_logger(logger)

    timers = Timers()
    instrument(model, timers)
    curve_env = manager.create_envs(1, eval_env=True)
    curve_env.seed(CURVE_SEED_OFFSET + spec["seed"])
    evaluation = _periodic_evaluation(curve_env, spec["eval_freq"], spec["curve_episodes"], spec["n_timesteps"], timers)
    manager.callbacks.append(evaluation)
    setup_s = time.perf_counter() - setup_start

    manager.learn(model)
    logger.close()
    if model.num_timesteps < spec["n_timesteps"]:
        # rl-zoo3's learn() swallows KeyboardInterrupt: an interrupted run must not look finished.
        raise SystemExit(f"training stopped at {model.num_timesteps} of {spec['n_timesteps']} env steps: no result written")
    learn_s = timers.totals["learn"]
    eval_s = timers.totals["evaluation"]
    train_wall = learn_s - eval_s

    final_env = manager.create_envs(1, eval_env=True)
    final_env.seed(FINAL_SEED_OFFSET + spec["seed"])
    sync_envs_normalization(model.get_env(), final_env)
    returns, lengths = evaluate_policy(
        model, final_env, n_eval_episodes=spec["eval_episodes"], deterministic=True, return_episode_rewards=True
    )
    final_env.close()
    curve_env.close()
    final = {
        "nominal": "final",
        "steps": int(model.num_timesteps),
        "wall_s": train_wall,
        "mean": float(np.mean(returns)),
        "std": float(np.std(returns)),
        "episodes": len(returns),
    }
    curve = [*evaluation.curve, final]
    crossing = first_crossing(curve, spec["threshold"])
    logs = _log_means(run_dir / "progress.csv")
    result = {
        "key": run_key(spec),
        "algo": spec["algo"],
        "env_id": spec["env_id"],
        "seed": spec["seed"],
        "n_timesteps": spec["n_timesteps"],
        "env_steps": int(model.num_timesteps),
        "final_mean": final["mean"],
        "final_std": final["std"],
        "eval_episodes": len(returns),
        "eval_timesteps": int(np.sum(lengths)),
        "episode_returns": [float(r) for r in returns],
        "auc": curve_area([p["steps"] for p in curve], [p["mean"] for p in curve], spec["n_timesteps"]),
        "threshold": spec["threshold"],
        "threshold_steps": crossing["steps"] if crossing else None,
        "threshold_wall_s": crossing["wall_s"] if crossing else None,
        "train_wall_s": train_wall,
        "eval_wall_s": eval_s,
        "setup_s": setup_s,
        "process_wall_s": time.perf_counter() - start_process,
        "steps_per_s": model.num_timesteps / train_wall if train_wall > 0 else float("nan"),
        "time_s": time_split(timers, train_wall),
        "timer_calls": dict(timers.calls),
        "params": int(sum(p.numel() for p in model.policy.parameters())),
        "peak_rss_mib": peak_rss_mib(resource.RUSAGE_SELF),
        "rss_imports_mib": rss_imports,
        "children_peak_rss_mib": peak_rss_mib(resource.RUSAGE_CHILDREN),
        "idle_fraction": logs.get("rollout/idle_fraction"),
        "log_means": logs,
        "hyperparams_file": spec["config"]["file"],
        "hyperparams_entry": spec["config"]["entry"],
        "hyperparams": {k: str(v) for k, v in saved_hyperparams.items()},
        "torch_threads": spec["torch_threads"],
        "curve": curve,
    }
    write_json_atomic(run_dir / "result.json", result)


# ----------------------------------------------------------------------------- running subprocesses


@dataclasses.dataclass
class Job:
    """A subprocess to run: its command line, log file and working directory."""

    name: str
    command: list[str]
    log: Path
    cwd: Path
    weight: float = 1.0


def run_jobs(
    jobs: Sequence[Job],
    n_jobs: int,
    on_finish: Callable[[Job, int], None],
    env: Mapping[str, str] | None = None,
    poll_s: float = 0.1,
) -> None:
    """
    Run commands as subprocesses, ``n_jobs`` at a time, in order.

    On an exception (Ctrl-C included) the subprocesses still running are terminated, then killed
    after 10 s.

    Parameters
    ----------
    jobs : Sequence[Job]
        Commands to run.
    n_jobs : int
        Most subprocesses at once.
    on_finish : Callable[[Job, int], None]
        Called with each job and its exit status when it ends.
    env : Mapping[str, str] | None
        Environment of the subprocesses (default: this process's).
    poll_s : float
        Polling interval.
    """
    pending = list(jobs)
    running: dict[subprocess.Popen, Job] = {}
    try:
        while pending or running:
            while pending and len(running) < max(1, n_jobs):
                job = pending.pop(0)
                job.log.parent.mkdir(parents=True, exist_ok=True)
                with open(job.log, "w") as log:
                    process = subprocess.Popen(
                        job.command, stdout=log, stderr=subprocess.STDOUT, cwd=job.cwd, env=None if env is None else dict(env)
                    )
                running[process] = job
            done = [process for process in running if process.poll() is not None]
            if not done:
                time.sleep(poll_s)
            for process in done:
                on_finish(running.pop(process), process.returncode)
    finally:
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# ----------------------------------------------------------------------------- sweep


def run_dir_of(out: Path, algo: str, env_id: str, seed: int) -> Path:
    """
    Folder of one run.

    Parameters
    ----------
    out : Path
        Output folder of the sweep.
    algo : str
        Algorithm.
    env_id : str
        Task.
    seed : int
        Seed.

    Returns
    -------
    Path
        ``out/runs/<algo>/<env_id>/seed<seed>``.
    """
    return out / "runs" / algo / env_id / f"seed{seed}"


def plan_runs(args: argparse.Namespace, tasks: Sequence[Task], out: Path) -> list[dict[str, Any]]:
    """
    The specifications of every run of the sweep (task-major, then seed, then algorithm).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command line.
    tasks : Sequence[Task]
        Tasks.
    out : Path
        Output folder.

    Returns
    -------
    list[dict[str, Any]]
        One specification per run.
    """
    specs = []
    for task in tasks:
        configs = {}
        for algo in args.algos:
            path, key, entry = zoo_entry(algo, task.env_id)
            configs[algo] = {"file": str(path), "entry": key, "values": entry}
        for seed in args.seeds:
            for algo in args.algos:
                specs.append(
                    {
                        "algo": algo,
                        "env_id": task.env_id,
                        "seed": int(seed),
                        "n_timesteps": task.n_timesteps,
                        "eval_freq": task.eval_freq,
                        "eval_episodes": args.eval_episodes,
                        "curve_episodes": args.curve_episodes,
                        "threshold": task.threshold,
                        "vec_env": args.vec_env,
                        "device": args.device,
                        "torch_threads": args.torch_threads,
                        "config": configs[algo],
                        "run_dir": str(run_dir_of(out, algo, task.env_id, seed)),
                    }
                )
    return specs


def finished_result(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """
    The result of a run if it finished with the same settings.

    Parameters
    ----------
    spec : Mapping[str, Any]
        Run specification.

    Returns
    -------
    dict[str, Any] | None
        Its ``result.json``, or ``None`` if missing, unreadable or from other settings.
    """
    result = read_json(Path(spec["run_dir"]) / "result.json")
    if not isinstance(result, dict) or not isinstance(result.get("key"), dict):
        return None
    stored = result["key"]
    if isinstance(stored.get("config"), dict):
        stored = {**stored, "config": _config_identity(stored["config"])}
    return result if stored == run_key(spec) else None


def worker_environment(torch_threads: int) -> dict[str, str]:
    """
    Environment of the worker processes: one BLAS/OpenMP thread pool of ``torch_threads``.

    Parameters
    ----------
    torch_threads : int
        Threads per run.

    Returns
    -------
    dict[str, str]
        The environment.
    """
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(name, str(torch_threads))
    env.setdefault("MPLBACKEND", "Agg")
    return env


def sweep(args: argparse.Namespace) -> int:
    """
    Run (or resume) the sweep, then write the reports.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command line.

    Returns
    -------
    int
        Exit status: 0, or 1 if a run failed.
    """
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tasks = resolve_tasks(args)
    specs = plan_runs(args, tasks, out)
    todo = [spec for spec in specs if finished_result(spec) is None]
    write_json_atomic(
        out / "config.json",
        {
            "command": " ".join([sys.executable, *sys.argv]),
            "args": vars(args),
            "tasks": [dataclasses.asdict(task) for task in tasks],
            "versions": versions(),
        },
    )
    print(
        f"{len(specs)} runs: {len(specs) - len(todo)} finished earlier (skipped), {len(todo)} to run, {args.n_jobs} at a time"
    )
    print(f"output: {out}")
    for task in tasks:
        print(
            f"  {task.env_id}: {task.n_timesteps} steps ({task.budget_source}), eval every {task.eval_freq}, "
            f"threshold {task.threshold} ({task.threshold_source})"
        )
    sys.stdout.flush()

    jobs = []
    for spec in todo:
        run_dir = Path(spec["run_dir"])
        if run_dir.exists():
            shutil.rmtree(run_dir)  # a run interrupted or from other settings: start it afresh
        write_json_atomic(run_dir / "spec.json", spec)
        jobs.append(
            Job(
                name=f"{spec['algo']} {spec['env_id']} seed {spec['seed']}",
                command=[sys.executable, str(SCRIPT), "--worker", str(run_dir / "spec.json")],
                log=run_dir / "worker.log",
                cwd=run_dir,
                weight=float(spec["n_timesteps"]),
            )
        )
    failures: list[Job] = []
    started = time.perf_counter()
    done_weight = 0.0
    total_weight = sum(job.weight for job in jobs)
    n_done = len(specs) - len(todo)

    def on_finish(job: Job, returncode: int) -> None:
        nonlocal done_weight, n_done
        done_weight += job.weight
        n_done += 1
        elapsed = time.perf_counter() - started
        # ETA: the remaining budget (env steps) at the rate the finished runs got through theirs.
        eta = elapsed * (total_weight - done_weight) / done_weight if done_weight else float("nan")
        count = f"[{n_done}/{len(specs)}]"
        result = read_json(job.cwd / "result.json") if returncode == 0 else None
        if result is None:
            failures.append(job)
            print(f"{count} FAILED {job.name} (exit {returncode}): see {job.log}")
        else:
            print(
                f"{count} {job.name}: final {result['final_mean']:.1f} +/- {result['final_std']:.1f}, "
                f"{result['env_steps']} steps, {result['train_wall_s']:.1f} s, {result['steps_per_s']:.0f} steps/s "
                f"| elapsed {format_duration(elapsed)}, ETA {format_duration(eta) if math.isfinite(eta) else '?'}"
            )
        sys.stdout.flush()

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGTERM (a scheduler's, or kill) stops the sweep like Ctrl-C: running runs end, none looks finished.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        run_jobs(jobs, args.n_jobs, on_finish, env=worker_environment(args.torch_threads))
    except KeyboardInterrupt:
        print("interrupted: the finished runs are kept; run the same command again to resume")
        return 130
    results = [result for spec in specs if (result := finished_result(spec)) is not None]
    write_reports(out, results, tasks, args)
    if failures:
        print(f"{len(failures)} run(s) failed; run the same command again to retry them.")
        return 1
    return 0


# ----------------------------------------------------------------------------- reports


def _median_with_misses(values: Sequence[float | None]) -> float | None:
    """Median where ``None`` (not reached) counts as infinite; ``None`` if that median is infinite."""
    if not values:
        return None
    median = float(np.median([math.inf if v is None else v for v in values]))
    return median if math.isfinite(median) else None


def _group(results: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for result in results:
        groups[(result["env_id"], result["algo"])].append(result)
    for runs in groups.values():
        runs.sort(key=lambda r: r["seed"])
    return groups


def flat_row(result: Mapping[str, Any]) -> dict[str, Any]:
    """
    One CSV row of a run's result (no curve, no hyperparameters).

    Parameters
    ----------
    result : Mapping[str, Any]
        A ``result.json``.

    Returns
    -------
    dict[str, Any]
        Flat columns.
    """
    keys = (
        "algo",
        "env_id",
        "seed",
        "n_timesteps",
        "env_steps",
        "final_mean",
        "final_std",
        "eval_episodes",
        "eval_timesteps",
        "auc",
        "threshold",
        "threshold_steps",
        "threshold_wall_s",
        "train_wall_s",
        "eval_wall_s",
        "setup_s",
        "steps_per_s",
        "params",
        "peak_rss_mib",
        "rss_imports_mib",
        "children_peak_rss_mib",
        "idle_fraction",
    )
    row = {key: result.get(key) for key in keys}
    for part, seconds in result["time_s"].items():
        row[f"time_{part}_s"] = seconds
    return row


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """
    Write dictionaries as CSV (columns: the union of their keys, in first-seen order).

    Parameters
    ----------
    path : Path
        Destination.
    rows : Sequence[Mapping[str, Any]]
        Rows.
    """
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def normalized(score: float, task: Task) -> float | None:
    """
    Score normalized so that random actions give 0 and the threshold 1.

    Parameters
    ----------
    score : float
        Return.
    task : Task
        Task (with ``threshold`` and ``random_score``).

    Returns
    -------
    float | None
        The normalized score, or ``None`` when the task has no threshold or random score.
    """
    if task.threshold is None or task.random_score is None or task.threshold == task.random_score:
        return None
    return (score - task.random_score) / (task.threshold - task.random_score)


def aggregate(results: Sequence[Mapping[str, Any]], tasks: Sequence[Task], algos: Sequence[str], reps: int) -> dict[str, Any]:
    """
    Interquartile mean of normalized scores and probability of improvement, with bootstrap CIs.

    Scores are the final evaluation return and the normalized curve area (``auc``); both are
    normalized per task by :func:`normalized` for the IQM. The probability of improvement compares
    raw scores task by task, for each ordered pair of algorithms.

    Parameters
    ----------
    results : Sequence[Mapping[str, Any]]
        Run results.
    tasks : Sequence[Task]
        Tasks (normalization constants).
    algos : Sequence[str]
        Algorithms, in report order.
    reps : int
        Bootstrap resamples.

    Returns
    -------
    dict[str, Any]
        ``{"iqm": {metric: {algo: [point, low, high]}}, "probability_of_improvement": {metric: {"a>b": [...]}}, ...}``.
    """
    by_task = {task.env_id: task for task in tasks}
    report: dict[str, Any] = {
        "method": f"stratified bootstrap over runs within each task, {reps} resamples, 95% percentile intervals",
        "normalization": "(score - random) / (threshold - random)",
        "tasks_normalized": sorted(t.env_id for t in tasks if normalized(0.0, t) is not None),
        "iqm": {},
        "probability_of_improvement": {},
    }
    for metric, field in (("final", "final_mean"), ("auc", "auc")):
        raw: dict[str, dict[str, list[float]]] = {algo: defaultdict(list) for algo in algos}
        norm: dict[str, dict[str, list[float]]] = {algo: defaultdict(list) for algo in algos}
        for result in results:
            if result["algo"] not in raw or result["env_id"] not in by_task:
                continue
            raw[result["algo"]][result["env_id"]].append(result[field])
            value = normalized(result[field], by_task[result["env_id"]])
            if value is not None:
                norm[result["algo"]][result["env_id"]].append(value)
        report["iqm"][metric] = {
            algo: list(
                stratified_bootstrap(lambda s: interquartile_mean(np.concatenate(list(s.values()))), [norm[algo]], reps)
            )
            for algo in algos
            if norm[algo]
        }
        pairs = {}
        for i, a in enumerate(algos):
            for b in algos[i + 1 :]:
                if set(raw[a]) & set(raw[b]):
                    pairs[f"{a}>{b}"] = list(stratified_bootstrap(probability_of_improvement, [raw[a], raw[b]], reps))
        report["probability_of_improvement"][metric] = pairs
    return report


def plot_curves(out: Path, results: Sequence[Mapping[str, Any]], algos: Sequence[str]) -> list[Path]:
    """
    One PNG per task: evaluation return against env steps and against training wall-clock.

    Lines are the mean over seeds, bands the min-max; seeds are aligned by evaluation point.

    Parameters
    ----------
    out : Path
        Output folder (PNGs go to ``out/curves``).
    results : Sequence[Mapping[str, Any]]
        Run results.
    algos : Sequence[str]
        Algorithms, in legend order.

    Returns
    -------
    list[Path]
        The files written.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no learning-curve plots (pip install 'sb3-gpg[plots]')")
        return []
    groups = _group(results)
    files = []
    for env_id in sorted({env for env, _ in groups}):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for algo in algos:
            runs = groups.get((env_id, algo))
            if not runs:
                continue
            points: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
            for run in runs:
                for point in run["curve"]:
                    points[point["nominal"]].append(point)
            keys = sorted((k for k in points if k != "final"), key=float) + (["final"] if "final" in points else [])
            keys = [k for k in keys if len(points[k]) == len(runs)]
            mean = np.array([np.mean([p["mean"] for p in points[k]]) for k in keys])
            low = np.array([np.min([p["mean"] for p in points[k]]) for k in keys])
            high = np.array([np.max([p["mean"] for p in points[k]]) for k in keys])
            for axis, field in zip(axes, ("steps", "wall_s"), strict=True):
                x = np.array([np.mean([p[field] for p in points[k]]) for k in keys])
                order = np.argsort(x, kind="stable")
                (line,) = axis.plot(x[order], mean[order], label=f"{algo.upper()} ({len(runs)} seeds)")
                axis.fill_between(x[order], low[order], high[order], color=line.get_color(), alpha=0.2)
        threshold = next((r["threshold"] for runs in groups.values() for r in runs if r["env_id"] == env_id), None)
        for axis, label in zip(axes, ("env steps", "training wall-clock (s)"), strict=True):
            if threshold is not None:
                axis.axhline(threshold, color="grey", linestyle="--", linewidth=1, label="threshold")
            axis.set_xlabel(label)
            axis.grid(alpha=0.3)
        axes[0].set_ylabel("evaluation return (deterministic)")
        axes[0].legend()
        fig.suptitle(f"{env_id}: mean over seeds, band = min-max")
        fig.tight_layout()
        path = out / "curves" / f"{env_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files.append(path)
    return files


def _fmt(value: float | None, spec: str = ".1f", missing: str = "-") -> str:
    return missing if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def _seconds(value: float | None) -> str:
    if value is None:
        return "not reached"
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def target_comparison(results: Sequence[Mapping[str, Any]], tasks: Sequence[Task]) -> list[dict[str, Any]]:
    """
    GPG against PPO on each task, in the terms of the project's targets.

    * ``final_iqm_gpg``/``final_iqm_ppo``: interquartile mean over seeds of the final return
      (target: GPG's >= PPO's);
    * ``ppo_final``: PPO's final return (mean over seeds); ``gpg_wall_to_ppo_final``: median over
      GPG's seeds of the training seconds of the first evaluation (periodic or final) whose mean
      return reaches it, a seed that never does counting as infinite (``None`` when that is the
      median); ``ppo_wall``: median of PPO's training seconds; ``wall_ratio``: their ratio
      (target: <= 0.6);
    * ``steps_per_s_ratio``, ``params_ratio``, ``peak_rss_ratio``: GPG's over PPO's, means over
      seeds (targets: >= 1.3, <= 0.55, < 1). Each algorithm runs its own configuration, so the
      throughput ratio is not at identical settings (``--scaling`` measures that).

    Parameters
    ----------
    results : Sequence[Mapping[str, Any]]
        Run results.
    tasks : Sequence[Task]
        Tasks, in report order (those without runs of both algorithms are left out).

    Returns
    -------
    list[dict[str, Any]]
        One row per task.
    """
    groups = _group(results)
    rows = []
    for task in tasks:
        gpg, ppo = groups.get((task.env_id, "gpg")), groups.get((task.env_id, "ppo"))
        if not gpg or not ppo:
            continue
        ppo_final = float(np.mean([r["final_mean"] for r in ppo]))
        walls = []
        for run in gpg:
            reached = [p["wall_s"] for p in run["curve"] if p["mean"] >= ppo_final]
            walls.append(min(reached) if reached else None)
        gpg_wall = _median_with_misses(walls)
        ppo_wall = float(np.median([r["train_wall_s"] for r in ppo]))

        def ratio(key: str, gpg_runs: Sequence[Mapping[str, Any]] = gpg, ppo_runs: Sequence[Mapping[str, Any]] = ppo) -> float:
            return float(np.mean([r[key] for r in gpg_runs]) / np.mean([r[key] for r in ppo_runs]))

        rows.append(
            {
                "env_id": task.env_id,
                "final_iqm_gpg": interquartile_mean(np.array([r["final_mean"] for r in gpg])),
                "final_iqm_ppo": interquartile_mean(np.array([r["final_mean"] for r in ppo])),
                "ppo_final": ppo_final,
                "gpg_wall_to_ppo_final": gpg_wall,
                "gpg_seeds_reaching_ppo_final": sum(w is not None for w in walls),
                "gpg_seeds": len(gpg),
                "ppo_wall": ppo_wall,
                "wall_ratio": None if gpg_wall is None else gpg_wall / ppo_wall,
                "steps_per_s_ratio": ratio("steps_per_s"),
                "params_ratio": ratio("params"),
                "peak_rss_ratio": ratio("peak_rss_mib"),
            }
        )
    return rows


def benchmark_markdown(
    results: Sequence[Mapping[str, Any]], tasks: Sequence[Task], algos: Sequence[str], agg: Mapping[str, Any], command: str
) -> str:
    """
    ``benchmark.md``: rl-zoo3's table, then per-task details, the time split and the aggregates.

    Parameters
    ----------
    results : Sequence[Mapping[str, Any]]
        Run results.
    tasks : Sequence[Task]
        Tasks.
    algos : Sequence[str]
        Algorithms, in table order.
    agg : Mapping[str, Any]
        Output of :func:`aggregate`.
    command : str
        Command line of the sweep.

    Returns
    -------
    str
        The Markdown text.
    """
    groups = _group(results)
    order = [(task.env_id, algo) for algo in algos for task in tasks if (task.env_id, algo) in groups]
    text = [
        "# GPG vs PPO (rl-zoo3)\n",
        f"Command: `{command}`\n",
        "## Performance of trained agents (rl-zoo3 format)\n",
        "Deterministic evaluation after training on `n_timesteps` env steps, pooled over all seeds "
        "(`eval_episodes` = seeds x episodes per seed, `eval_timesteps` = their env steps).\n",
    ]
    rows = []
    for env_id, algo in order:
        runs = groups[(env_id, algo)]
        pooled = np.concatenate([r["episode_returns"] for r in runs])
        rows.append(
            [
                algo,
                env_id,
                f"{np.mean(pooled):.3f}",
                f"{np.std(pooled):.3f}",
                format_steps(runs[0]["n_timesteps"]),
                sum(r["eval_timesteps"] for r in runs),
                len(pooled),
            ]
        )
    header = ["algo", "env_id", "mean_reward", "std_reward", "n_timesteps", "eval_timesteps", "eval_episodes"]
    text.append(markdown_table(header, rows, [False, False, True, True, False, True, True]))

    text.append("\n## Details (mean over seeds; +/- is the std over seeds)\n")
    text.append(
        "`AUC`: area under the evaluation curve divided by the budget (mean evaluation return over training). "
        "`to threshold`: median over seeds of the env steps / training seconds of the first evaluation at or above the "
        "threshold, a seed that never gets there counting as infinite (`not reached` when that is the median); "
        "`(k/n)` seeds reached it. `steps/s` and seconds exclude evaluation. `peak RSS`: peak resident memory of the "
        "run's process (interpreter, torch and rl-zoo3 included).\n"
    )
    rows = []
    for env_id, algo in sorted(order):
        runs = groups[(env_id, algo)]
        finals = [r["final_mean"] for r in runs]
        steps = [r["threshold_steps"] for r in runs]
        walls = [r["threshold_wall_s"] for r in runs]
        reached = sum(s is not None for s in steps)
        median_steps, median_wall = _median_with_misses(steps), _median_with_misses(walls)
        threshold = runs[0]["threshold"]
        rows.append(
            [
                env_id,
                algo,
                len(runs),
                f"{np.mean(finals):.1f} +/- {np.std(finals):.1f}",
                f"{np.mean([r['auc'] for r in runs]):.1f}",
                _fmt(threshold, "g", "none"),
                f"{format_steps(median_steps) if median_steps is not None else 'not reached'} ({reached}/{len(runs)})",
                _seconds(median_wall),
                f"{np.mean([r['steps_per_s'] for r in runs]):.0f}",
                _seconds(float(np.mean([r["train_wall_s"] for r in runs]))),
                runs[0]["params"],
                f"{np.mean([r['peak_rss_mib'] for r in runs]):.0f}",
            ]
        )
    header = [
        "env",
        "algo",
        "seeds",
        "final return",
        "AUC",
        "threshold",
        "steps to threshold",
        "s to threshold",
        "steps/s",
        "train s",
        "params",
        "peak RSS MiB",
    ]
    text.append(markdown_table(header, rows, [False, False, True, False, True, True, True, True, True, True, True, True]))

    text.append("\n## Time split (share of training wall-clock, evaluation excluded; mean over seeds)\n")
    text.append(
        "`env`: the training VecEnv's `step`, `reset` and `env_method` (VecNormalize included); `inference`: the "
        "policy's `forward` during rollouts; `advantages`: the rollout buffer's `compute_returns_and_advantage` (GAE "
        "for PPO, group Monte Carlo baselines for GPG); `updates`: the model's `train`; `other`: the rest (buffer "
        "writes, callbacks, logging, PPO's value of the last observation). `idle`: GPG's `rollout/idle_fraction`.\n"
    )
    rows = []
    for env_id, algo in sorted(order):
        runs = groups[(env_id, algo)]
        shares = {
            part: np.mean([r["time_s"][part] / r["train_wall_s"] for r in runs])
            for part in (*TIME_SPLIT, "other")
            if all(r["train_wall_s"] > 0 for r in runs)
        }
        idle = [r["idle_fraction"] for r in runs if r.get("idle_fraction") is not None]
        rows.append(
            [env_id, algo]
            + [f"{100 * shares[part]:.0f}%" if part in shares else "-" for part in (*TIME_SPLIT, "other")]
            + [f"{100 * np.mean(idle):.0f}%" if idle else "-"]
        )
    text.append(markdown_table(["env", "algo", *TIME_SPLIT, "other", "idle"], rows, [False, False] + [True] * 6))

    targets = target_comparison(results, tasks)
    if targets:
        text.append("\n## Against the targets (GPG / PPO per task)\n")
        text.append(
            "Targets: final return IQM over seeds >= PPO's; training seconds to PPO's final return (first evaluation "
            "at or above PPO's mean final return; median over seeds, a seed that never gets there counting as "
            "infinite) <= 0.6 x PPO's training seconds; steps/s >= 1.3x; parameters <= 0.55x; lower peak memory. "
            "Each algorithm runs its own tuned configuration here: `--scaling` compares throughput at identical "
            "settings.\n"
        )
        rows = []
        for t in targets:
            wall = _seconds(t["gpg_wall_to_ppo_final"]) if t["gpg_wall_to_ppo_final"] is not None else "not reached"
            rows.append(
                [
                    t["env_id"],
                    f"{t['final_iqm_gpg']:.1f} / {t['final_iqm_ppo']:.1f}",
                    "yes" if t["final_iqm_gpg"] >= t["final_iqm_ppo"] else "no",
                    f"{wall} ({t['gpg_seeds_reaching_ppo_final']}/{t['gpg_seeds']}) / {_seconds(t['ppo_wall'])}",
                    _fmt(t["wall_ratio"], ".2f", "-"),
                    f"{t['steps_per_s_ratio']:.2f}",
                    f"{t['params_ratio']:.2f}",
                    f"{t['peak_rss_ratio']:.3f}",
                ]
            )
        header = [
            "env",
            "final IQM",
            ">= PPO",
            "s to PPO's final / PPO's s",
            "ratio",
            "steps/s ratio",
            "params ratio",
            "peak RSS ratio",
        ]
        text.append(markdown_table(header, rows, [False, False, False, False, True, True, True, True]))

    text.append("\n## Aggregate over tasks\n")
    text.append(
        f"{agg['method']}. Normalized score: {agg['normalization']} (random: uniform random actions; tasks: "
        f"{', '.join(agg['tasks_normalized']) or 'none'}). Probability of improvement P(X > Y): chance that a run of X "
        "beats a run of Y on the same task (ties count half), averaged over tasks.\n"
    )
    rows = []
    for metric, label in (("final", "final return"), ("auc", "AUC")):
        for algo, (point, low, high) in agg["iqm"].get(metric, {}).items():
            rows.append([f"IQM normalized {label}", algo, f"{point:.3f}", f"[{low:.3f}, {high:.3f}]"])
        for pair, (point, low, high) in agg["probability_of_improvement"].get(metric, {}).items():
            a, b = pair.split(">")
            rows.append([f"P(improvement), {label}", f"P({a} > {b})", f"{point:.3f}", f"[{low:.3f}, {high:.3f}]"])
    text.append(markdown_table(["metric", "algo", "estimate", "95% CI"], rows, [False, False, True, False]))

    text.append("\n## Tasks\n")
    rows = [
        [
            t.env_id,
            t.n_timesteps,
            t.budget_source,
            t.eval_freq,
            _fmt(t.threshold, "g", "none"),
            t.threshold_source,
            _fmt(t.random_score, ".1f"),
        ]
        for t in tasks
    ]
    text.append(
        markdown_table(
            ["env", "budget", "budget from", "eval every", "threshold", "threshold from", "random score"],
            rows,
            [False, True, False, True, True, False, True],
        )
    )
    text.append("\nLearning curves: `curves/<env>.png`. Per-seed numbers: `results.csv`, `results.json`.\n")
    return "\n".join(text)


def write_reports(out: Path, results: Sequence[Mapping[str, Any]], tasks: Sequence[Task], args: argparse.Namespace) -> None:
    """
    Write every report of a sweep from the run results.

    Parameters
    ----------
    out : Path
        Output folder.
    results : Sequence[Mapping[str, Any]]
        Results of the finished runs.
    tasks : Sequence[Task]
        Tasks.
    args : argparse.Namespace
        Parsed command line.
    """
    if not results:
        print("no finished runs: no report")
        return
    write_json_atomic(out / "results.json", list(results))
    write_csv(out / "results.csv", [flat_row(r) for r in results])
    write_csv(
        out / "curves.csv",
        [{"algo": r["algo"], "env_id": r["env_id"], "seed": r["seed"], **point} for r in results for point in r["curve"]],
    )
    agg = aggregate(results, tasks, args.algos, args.bootstrap_reps)
    write_json_atomic(out / "aggregate.json", {**agg, "targets": target_comparison(results, tasks)})
    plot_curves(out, results, args.algos)
    command = " ".join(["python", "scripts/benchmark.py", *sys.argv[1:]])
    write_text_atomic(out / "benchmark.md", benchmark_markdown(results, tasks, args.algos, agg, command))
    print(f"reports: {out / 'benchmark.md'}, results.csv, results.json, curves.csv, aggregate.json, curves/*.png")


# ----------------------------------------------------------------------------- scaling


def scaling(args: argparse.Namespace) -> int:
    """
    Steps per second of GPG and PPO against the raw VecEnv rate, for several ``n_envs``.

    Every measurement builds a fresh VecEnv (``add_group_reset`` in each sub-env, for all three)
    and, for the models, the same actor (``net_arch=[64, 64]``, tanh), ``n_epochs``, minibatch
    size, learning rate and gamma; PPO's ``n_steps`` is ``--scaling-rollout // n_envs`` (at least
    1), GPG uses ``group_size=8`` with its default ``n_groups`` (about four episodes per env per
    rollout). Model rates are env steps over ``learn()`` wall-clock (model and env construction
    excluded); the ceiling steps the VecEnv with pre-drawn random actions.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command line.

    Returns
    -------
    int
        Exit status.
    """
    import torch as th
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from sb3_gpg import GPG, add_group_reset

    th.set_num_threads(args.torch_threads)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    classes = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}
    common = {
        "policy_kwargs": {"net_arch": [64, 64]},
        "n_epochs": args.scaling_epochs,
        "batch_size": args.scaling_batch_size,
        "learning_rate": 3e-4,
        "gamma": 0.99,
        "seed": 0,
        "device": args.device,
    }

    def make(vec_env: str, n_envs: int) -> Any:
        return make_vec_env(
            args.scaling_env, n_envs=n_envs, seed=0, wrapper_class=add_group_reset, vec_env_cls=classes[vec_env]
        )

    rows: list[dict[str, Any]] = []
    print(f"scaling on {args.scaling_env}: {args.scaling_steps} env steps per measurement, torch threads {args.torch_threads}")
    for vec_env in args.scaling_vec_envs:
        for n_envs in args.scaling_n_envs:
            env = make(vec_env, n_envs)
            env.action_space.seed(0)
            actions = [np.stack([env.action_space.sample() for _ in range(n_envs)]) for _ in range(64)]
            env.reset()
            n_calls = max(1, math.ceil(args.scaling_steps / n_envs))
            start = time.perf_counter()
            for i in range(n_calls):
                env.step(actions[i % len(actions)])
            wall = time.perf_counter() - start
            env.close()
            row: dict[str, Any] = {
                "env_id": args.scaling_env,
                "vec_env": vec_env,
                "n_envs": n_envs,
                "random_steps_per_s": n_calls * n_envs / wall,
            }
            for algo in args.algos:
                env = make(vec_env, n_envs)
                if algo == "gpg":
                    model: Any = GPG("MlpPolicy", env, group_size=8, **common)
                else:
                    model = PPO("MlpPolicy", env, n_steps=max(1, args.scaling_rollout // n_envs), **common)
                timers = Timers()
                instrument(model, timers)
                model.learn(args.scaling_steps)
                wall = timers.totals["learn"]
                env.close()
                row[f"{algo}_steps_per_s"] = model.num_timesteps / wall
                row[f"{algo}_env_steps"] = int(model.num_timesteps)
                row[f"{algo}_fraction_of_ceiling"] = row[f"{algo}_steps_per_s"] / row["random_steps_per_s"]
                for part, seconds in time_split(timers, wall).items():
                    row[f"{algo}_{part}_share"] = seconds / wall
            rows.append(row)
            rates = ", ".join(f"{algo} {row[f'{algo}_steps_per_s']:.0f}" for algo in args.algos)
            print(f"  {vec_env:7} n_envs={n_envs:<3} random {row['random_steps_per_s']:.0f}, {rates} steps/s")
            sys.stdout.flush()

    write_csv(out / "scaling.csv", rows)
    header = ["vec_env", "n_envs", "random actions (steps/s)"]
    numeric = [False, True, True]
    for algo in args.algos:
        header += [f"{algo.upper()} steps/s", f"{algo.upper()} % of ceiling", f"{algo.upper()} env / updates share"]
        numeric += [True, True, True]
    if "gpg" in args.algos and "ppo" in args.algos:
        header.append("GPG / PPO")
        numeric.append(True)
    table = []
    for row in rows:
        cells: list[Any] = [row["vec_env"], row["n_envs"], f"{row['random_steps_per_s']:.0f}"]
        for algo in args.algos:
            cells += [
                f"{row[f'{algo}_steps_per_s']:.0f}",
                f"{100 * row[f'{algo}_fraction_of_ceiling']:.0f}%",
                f"{100 * row[f'{algo}_env_share']:.0f}% / {100 * row[f'{algo}_updates_share']:.0f}%",
            ]
        if "gpg" in args.algos and "ppo" in args.algos:
            cells.append(f"{row['gpg_steps_per_s'] / row['ppo_steps_per_s']:.2f}")
        table.append(cells)
    text = (
        f"# Throughput scaling on {args.scaling_env}\n\n"
        f"Command: `python scripts/benchmark.py {' '.join(sys.argv[1:])}`\n\n"
        f"{args.scaling_steps} env steps per measurement; actor net_arch [64, 64], n_epochs {args.scaling_epochs}, "
        f"batch_size {args.scaling_batch_size} for both; PPO n_steps = {args.scaling_rollout} // n_envs, GPG "
        f"group_size 8 and default n_groups; {args.torch_threads} torch thread(s). Ceiling: the same VecEnv stepped "
        "with random actions. Env / updates share: fraction of learn() time in the VecEnv and in train().\n\n"
        + markdown_table(header, table, numeric)
        + f"\nMachine: {json.dumps(versions())}\n"
    )
    write_text_atomic(out / "scaling.md", text)
    print(f"reports: {out / 'scaling.csv'}, {out / 'scaling.md'}")
    return 0


# ----------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    Parse the command line (``--smoke`` fills in its tiny defaults).

    Parameters
    ----------
    argv : Sequence[str] | None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        The arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=None, help=f"Gymnasium ids (default: {' '.join(DEFAULT_TASKS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds (default: 0 1 2 3 4)")
    parser.add_argument("--algos", nargs="+", choices=ALGOS, default=list(ALGOS), help="algorithms (default: gpg ppo)")
    parser.add_argument("--n-timesteps", type=int, default=None, help="env-step budget of every task")
    parser.add_argument(
        "--budget-scale", type=float, default=1.0, help="multiplies the default budgets (rl-zoo3's PPO budget per task)"
    )
    parser.add_argument(
        "--budget",
        action="append",
        metavar="ENV=STEPS",
        help="env-step budget of one task (overrides the others; reported as shortened); repeatable",
    )
    parser.add_argument("--eval-freq", type=int, default=None, help="env steps between evaluations (default: budget / 20)")
    parser.add_argument("--eval-episodes", type=int, default=20, help="episodes of the final evaluation (default: 20)")
    parser.add_argument("--curve-episodes", type=int, default=None, help="episodes of each periodic evaluation (default: 10)")
    parser.add_argument(
        "--threshold", action="append", metavar="ENV=VALUE", help="threshold of a task (overrides the env spec); repeatable"
    )
    parser.add_argument("--out", type=str, default=None, help="output folder (default: benchmarks/gpg_vs_ppo)")
    parser.add_argument("--n-jobs", type=int, default=1, help="runs at once, one process each (default: 1)")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets, 1 seed, CartPole-v1 only")
    parser.add_argument("--vec-env", choices=("dummy", "subproc"), default="dummy", help="VecEnv of the sweep's runs")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads per run (default: 1)")
    parser.add_argument("--bootstrap-reps", type=int, default=2000, help="bootstrap resamples of the aggregates")
    parser.add_argument("--report-only", action="store_true", help="rewrite the reports from the finished runs, run nothing")
    parser.add_argument("--scaling", action="store_true", help="throughput scaling mode instead of the sweep")
    parser.add_argument("--scaling-env", default="CartPole-v1", help="task of --scaling")
    parser.add_argument("--scaling-n-envs", nargs="+", type=int, default=None, help="n_envs of --scaling (default: 1 4 16 64)")
    parser.add_argument("--scaling-vec-envs", nargs="+", choices=("dummy", "subproc"), default=["dummy", "subproc"])
    parser.add_argument("--scaling-steps", type=int, default=None, help="env steps per measurement (default: 50000)")
    parser.add_argument(
        "--scaling-rollout", type=int, default=None, help="PPO's n_steps * n_envs in --scaling (default: 2048)"
    )
    parser.add_argument("--scaling-epochs", type=int, default=10, help="n_epochs of both algorithms in --scaling")
    parser.add_argument("--scaling-batch-size", type=int, default=256, help="batch_size of both algorithms in --scaling")
    parser.add_argument("--worker", type=str, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    smoke = args.smoke
    args.tasks = args.tasks or list(SMOKE_TASKS if smoke else DEFAULT_TASKS)
    args.seeds = args.seeds if args.seeds is not None else ([0] if smoke else [0, 1, 2, 3, 4])
    args.n_timesteps = args.n_timesteps or (SMOKE_TIMESTEPS if smoke else None)
    args.eval_freq = args.eval_freq or (SMOKE_EVAL_FREQ if smoke else None)
    args.curve_episodes = args.curve_episodes or (SMOKE_CURVE_EPISODES if smoke else 10)
    args.scaling_n_envs = args.scaling_n_envs or list(SMOKE_SCALING_N_ENVS if smoke else (1, 4, 16, 64))
    args.scaling_steps = args.scaling_steps or (SMOKE_SCALING_STEPS if smoke else 50_000)
    args.scaling_rollout = args.scaling_rollout or (SMOKE_SCALING_ROLLOUT if smoke else 2048)
    if args.out is None:
        args.out = str(Path("benchmarks") / ("smoke" if smoke else "scaling" if args.scaling else "gpg_vs_ppo"))
    for name in ("n_jobs", "eval_episodes", "curve_episodes", "torch_threads", "bootstrap_reps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.scaling_steps < 1 or args.scaling_rollout < 1:
        parser.error("--scaling-steps and --scaling-rollout must be >= 1")
    if args.budget_scale <= 0:
        parser.error("--budget-scale must be > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """
    Entry point.

    Parameters
    ----------
    argv : Sequence[str] | None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    args = parse_args(argv)
    if args.worker:
        run_worker(Path(args.worker))
        return 0
    if args.scaling:
        return scaling(args)
    if args.report_only:
        out = Path(args.out).resolve()
        tasks = resolve_tasks(args)
        results = [r for spec in plan_runs(args, tasks, out) if (r := finished_result(spec)) is not None]
        write_reports(out, results, tasks, args)
        return 0
    return sweep(args)


if __name__ == "__main__":
    sys.exit(main())
