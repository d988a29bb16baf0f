"""
GPG against SB3 PPO, through rl-zoo3.

For every task, seed and algorithm, a subprocess trains the model rl-zoo3's ``ExperimentManager`` builds from
``hyperparams/gpg.yml`` (GPG), rl-zoo3's ``ppo.yml`` (PPO) or ``--conf ALGO=FILE`` (``--conf ALGO:ENV=FILE``: for one
task), by default with rl-zoo3's PPO budget of the task, with :class:`TimedEvaluation` attached; it then evaluates the
policy on ``--eval-episodes`` fresh episodes and writes ``result.json`` atomically. A restarted sweep skips the runs
whose result holds the same settings, and sweeps started on one ``--out`` split its runs (:func:`claim_run`).
``bench_report.py`` writes the reports into ``--out``: ``results.csv``/``.json``, ``curves.csv``,
``curves/<env>.png``, ``aggregate.json`` and ``benchmark.md``. Usage::

    python scripts/benchmark.py --out benchmarks/gpg_vs_ppo --n-jobs 8
    python scripts/benchmark.py --smoke --out /tmp/smoke
    python scripts/benchmark.py --conf gpg=variant.yml --out benchmarks/estimators/variant
"""

import argparse
import ast
import contextlib
import csv
import dataclasses
import fcntl
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata, util
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

from sb3_gpg.zoo import config_path, register

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_report, imported by the sweep only: the workers'
# peak memory (a reported result) must not include pandas' and scipy's
ALGOS = ("gpg", "ppo")
DEFAULT_TASKS = (
    "CartPole-v1 Acrobot-v1 Pendulum-v1 LunarLander-v3 LunarLanderContinuous-v3 HalfCheetah-v5 Hopper-v5 Walker2d-v5".split()
)
#: Thresholds of tasks whose env spec has none (Pendulum-v1: swings up and holds in nearly every episode).
EXTRA_THRESHOLDS = {"Pendulum-v1": -200.0}
#: Mean return of uniformly random actions (:func:`random_score`, 100 episodes); other tasks are measured (20).
RANDOM_SCORES = dict(zip(DEFAULT_TASKS, (23.7, -497.1, -1207.6, -192.0, -212.7, -282.5, 16.7, 1.8), strict=True))
#: ``--smoke``'s defaults: seed 0 on CartPole-v1, 3000 steps, 5 evaluation episodes every 1000.
SMOKE = {"tasks": ["CartPole-v1"], "seeds": [0], "n_timesteps": 3000, "eval_freq": 1000, "curve_episodes": 5}
CURVE_SEED_OFFSET, FINAL_SEED_OFFSET = 20_000, 10_000  # evaluation envs' seeds (training envs: the run's seed)
#: Settings that identify a run, with its configuration's entry and values: a result is reused only if they match.
KEY = ("algo", "env_id", "seed", "n_timesteps", "eval_freq", "eval_episodes", "curve_episodes", "vec_env", "device")


def write_atomic(path: Path, data: Any) -> None:
    """Write ``data``, text (a ``str``) or JSON (anything else), so that ``path`` holds its old or its whole new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as file:
        file.write(data if isinstance(data, str) else json.dumps(data, indent=2, default=str))
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def source_hash(paths: Sequence[Path], root: Path) -> str:
    """
    A short hash of Python sources that changes with their code, not with their docstrings, comments or layout:
    each file's syntax tree with docstrings removed (``ast.dump``), with its path relative to ``root``.
    """
    digest = hashlib.sha256()
    for path in sorted(paths):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        digest.update(f"{path.relative_to(root).as_posix()}\0{ast.dump(tree)}\0".encode())
    return digest.hexdigest()[:12]


def code_version(algo: str) -> dict[str, Any]:
    """
    What made a run: the version of the algorithm's code (``code``), and the git commit of the checkout and whether it
    had uncommitted changes. ``code`` is, for GPG, the package version and :func:`source_hash` of ``sb3_gpg``'s sources
    (a commit also changes with docs and configurations, the hash only with the code); for PPO, Stable-Baselines3's
    version. The sweep redoes a run whose ``code`` is not the current one; the reports refuse to mix two.
    """
    import sb3_gpg

    root = Path(__file__).resolve().parent.parent
    git = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True).stdout.strip()  # noqa: E731
    package = Path(sb3_gpg.__file__).parent
    sb3 = f"stable-baselines3 {metadata.version('stable-baselines3')}"
    code = (
        f"sb3-gpg {sb3_gpg.__version__} {source_hash(list(package.rglob('*.py')), package.parent)}" if algo == "gpg" else sb3
    )
    return {"code": code, "git_commit": git("rev-parse", "HEAD") or None, "git_dirty": bool(git("status", "--porcelain"))}


def config_hash(values: dict[str, Any]) -> str:
    """A short hash of a configuration entry's values (key order does not matter)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]


def curve_area(steps: Sequence[float], returns: Sequence[float], budget: float) -> float:
    """
    Mean evaluation return over training: the area under ``returns`` (mean return of each evaluation) against ``steps``
    over ``[0, budget]``, linear between points and flat outside, divided by ``budget``; NaN without evaluations.
    """
    x, y = np.asarray(steps, dtype=float), np.asarray(returns, dtype=float)
    if x.size == 0:
        return float("nan")
    order, grid = np.argsort(x, kind="stable"), np.unique(np.concatenate([[0.0], x[x < budget], [float(budget)]]))
    values = np.interp(grid, x[order], y[order])
    return float(np.sum(np.diff(grid) * (values[1:] + values[:-1]) / 2.0) / budget)


class TimedEvaluation(BaseCallback):
    """
    Evaluation curve against env steps and training seconds, and the split of the training time.

    Training seconds run from ``on_training_start`` to ``on_training_end``, evaluations excluded; of them, ``rollout``
    from ``on_rollout_start`` to ``on_rollout_end`` (env steps, inference, buffer, advantages), ``updates`` from there
    to the next rollout (``train()``, logger dump), ``other`` the rest.

    :param eval_env: evaluation VecEnv (``VecNormalize`` statistics copied from the training env), or ``None``
    :param eval_freq: env steps between evaluations (the first at step 0)
    :param n_episodes: deterministic episodes per evaluation
    :param budget: no evaluation is scheduled past this many env steps
    """

    def __init__(self, eval_env: VecEnv | None = None, eval_freq: int = 1, n_episodes: int = 1, budget: int = 0) -> None:
        super().__init__()
        self.eval_env, self.eval_freq, self.n_episodes, self.budget = eval_env, eval_freq, n_episodes, budget
        self.curve: list[dict[str, Any]] = []
        self.seconds = {"rollout": 0.0, "updates": 0.0, "other": 0.0, "evaluation": 0.0}
        self.next_eval, self.phase, self.mark, self.start, self.end = 0, "other", 0.0, 0.0, 0.0

    @property
    def train_seconds(self) -> float:
        """Training seconds so far (all of them once training ended), evaluations excluded."""
        return (self.end or time.perf_counter()) - self.start - self.seconds["evaluation"]

    def evaluate(self, env: VecEnv, n_episodes: int, nominal: int | str) -> tuple[dict[str, Any], list[float], list[int]]:
        """
        Evaluate the deterministic policy on ``n_episodes`` of ``env``, outside the training time.

        :return: the curve point (``nominal``: the scheduled env step or ``"final"``; ``steps``; ``wall_s``: training
            seconds; ``mean``, ``std`` and number of ``episodes``), the episodes' returns and lengths
        """
        start, wall = time.perf_counter(), self.train_seconds
        sync_envs_normalization(self.model.get_env(), env)
        returns, lengths = evaluate_policy(self.model, env, n_episodes, deterministic=True, return_episode_rewards=True)
        if not self.end:  # during training: neither training time nor the running phase's
            self.seconds["evaluation"] += time.perf_counter() - start
            self.mark += time.perf_counter() - start
        stats = {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "episodes": len(returns)}
        return {"nominal": nominal, "steps": int(self.model.num_timesteps), "wall_s": wall, **stats}, returns, lengths

    def _switch(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[self.phase] += now - self.mark
        self.phase, self.mark = phase, now

    def _on_training_start(self) -> None:
        self.start = self.mark = time.perf_counter()
        self._on_step()

    def _on_rollout_start(self) -> None:
        self._switch("rollout")

    def _on_step(self) -> bool:
        if self.eval_env is not None and self.next_eval <= min(self.model.num_timesteps, self.budget):
            self.curve.append(self.evaluate(self.eval_env, self.n_episodes, self.next_eval)[0])
            self.next_eval += self.eval_freq * (1 + (self.model.num_timesteps - self.next_eval) // self.eval_freq)
        return True

    def _on_rollout_end(self) -> None:
        self._switch("updates")

    def _on_training_end(self) -> None:
        self._switch("other")
        self.end = time.perf_counter()


class StopAtTrainingSeconds(BaseCallback):
    """
    Stop training once ``timing`` has counted ``seconds`` of training (evaluations excluded): the equal-time runs.

    :param timing: the run's :class:`TimedEvaluation`
    :param seconds: training seconds allowed
    """

    def __init__(self, timing: TimedEvaluation, seconds: float) -> None:
        super().__init__()
        self.timing, self.seconds = timing, seconds

    def _on_step(self) -> bool:
        return self.timing.train_seconds < self.seconds


@dataclasses.dataclass
class Task:
    """A benchmark task: env, budget, evaluation period, threshold and random-policy score."""

    env_id: str
    n_timesteps: int
    budget_source: str
    eval_freq: int
    threshold: float | None
    threshold_source: str
    random_score: float | None = None


def zoo_entry(algo: str, env_id: str, conf: dict[str, str]) -> tuple[Path, str, dict[str, Any]]:
    """
    The configuration entry rl-zoo3 would use for a task (named like the env, else ``default``), or the newest
    older env version's (``ppo.yml`` has ``HalfCheetah-v4``, not ``-v5``).

    :param conf: configuration files by algorithm, or by ``ALGO:ENV`` for one task (``--conf``; the task's file wins
        over the algorithm's); default: sb3-gpg's ``gpg.yml``, rl-zoo3's ``ppo.yml``
    :return: the file, the name of the entry used and the entry
    """
    if f"{algo}:{env_id}" in conf:
        path = Path(conf[f"{algo}:{env_id}"]).resolve()
    elif algo in conf:
        path = Path(conf[algo]).resolve()
    elif algo == "gpg":
        path = config_path("gpg")
    else:
        package = Path(util.find_spec("rl_zoo3").origin).parent  # type: ignore[union-attr]
        path = (package if (package / "hyperparams").is_dir() else package.parent) / "hyperparams" / f"{algo}.yml"
    entries = yaml.safe_load(path.read_text())
    split = {k: (name, int(v)) for k in [env_id, *entries] for name, sep, v in [k.rpartition("-v")] if sep and v.isdigit()}
    wanted = split.get(env_id, ("", -1))
    older = [(v[1], k) for k, v in split.items() if k in entries and v[0] == wanted[0] and v[1] < wanted[1]]
    key = env_id if env_id in entries else max(older)[1] if older else "default"
    if key not in entries:
        raise SystemExit(f"{path} has no entry for {env_id} and no default entry")
    return path, key, dict(entries[key])


def random_score(env_id: str, episodes: int) -> float:
    """Mean return of uniformly random actions over ``episodes`` episodes (env seeds 0, 1, ...; action space seed 0)."""
    env, total = gym.make(env_id), 0.0
    env.action_space.seed(0)
    for episode in range(episodes):
        env.reset(seed=episode)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total, done = total + float(reward), terminated or truncated
    return total / episodes


def parse_pairs(items: Sequence[str] | None, option: str, kind: type) -> dict[str, Any]:
    """Values of the repeated ``NAME=VALUE`` option ``option`` (``items``, as given) by name, of type ``kind`` (int: >= 1)."""
    values = {}
    for name, sep, value in (item.partition("=") for item in items or []):
        try:
            values[name] = kind(value)
            if not (sep and name and value) or (kind is int and values[name] < 1):
                raise ValueError
        except ValueError:
            hint = " (VALUE an integer >= 1)" if kind is int else ""
            raise SystemExit(f"{option} takes NAME=VALUE{hint}, not {name}{sep}{value}") from None
    return values


def resolve_tasks(args: argparse.Namespace) -> list[Task]:
    """The tasks, in command-line order: check that each env can be created, find its budget, threshold and random score."""
    budgets, tasks = parse_pairs(args.budget, "--budget", int), []
    if unknown := sorted(set(budgets) - set(args.tasks)):
        raise SystemExit(f"--budget names {', '.join(unknown)}, which is not among --tasks")
    for env_id in args.tasks:
        try:
            gym.make(env_id).close()
        except Exception as error:
            hint = " (MuJoCo envs need: pip install 'gymnasium[mujoco]')" if "mujoco" in repr(error).lower() else ""
            raise SystemExit(f"cannot create {env_id}: {error!r}{hint}") from error
        _, key, entry = zoo_entry("ppo", env_id, {})
        budget, source = int(float(entry["n_timesteps"])), f"rl-zoo3 ppo.yml [{key}]"
        if env_id in budgets:
            budget, source = budgets[env_id], f"--budget ({source}: {budget})"
        elif args.n_timesteps:
            budget, source = args.n_timesteps, "--n-timesteps"
        threshold, threshold_source = gym.spec(env_id).reward_threshold, "env spec reward_threshold"
        if threshold is None:
            threshold, threshold_source = EXTRA_THRESHOLDS.get(env_id), "benchmark.py EXTRA_THRESHOLDS"
        random = RANDOM_SCORES[env_id] if env_id in RANDOM_SCORES else random_score(env_id, 20)
        eval_freq = args.eval_freq or max(1, budget // 20)
        tasks.append(Task(env_id, budget, source, eval_freq, threshold, threshold_source if threshold else "none", random))
    return tasks


def run_key(spec: dict[str, Any]) -> dict[str, Any]:
    """
    What identifies a run (``spec``: its specification, or the ``key`` of a ``result.json`` of this or an earlier version):
    :data:`KEY`, and its configuration's entry and values (not the file's path).
    """
    key = {**{name: spec[name] for name in KEY}, "config": {k: v for k, v in spec["config"].items() if k != "file"}}
    return key | ({"time_budget_s": spec["time_budget_s"]} if spec.get("time_budget_s") is not None else {})


def result_code(result: dict[str, Any]) -> str:
    """The code version that made a result (``"unrecorded"`` for results written before runs recorded it)."""
    return result.get("provenance", {}).get("code", "unrecorded")


def finished_result(spec: dict[str, Any], code: str | None = None) -> dict[str, Any] | None:
    """
    The run's ``result.json`` if it finished with the same settings (:func:`run_key`) and, if ``code`` is given, that
    code version (:func:`code_version`); else (or if unreadable) ``None``.
    """
    try:
        result = json.loads((Path(spec["run_dir"]) / "result.json").read_text())
        same = run_key(result["key"]) == run_key(spec) and code in (None, result_code(result))
        return result if same else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def mixed_code(results: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """The algorithms whose results come from more than one code version, with those versions."""
    versions: dict[str, set[str]] = {}
    for result in results:
        versions.setdefault(result["algo"], set()).add(result_code(result))
    return {algo: sorted(codes) for algo, codes in versions.items() if len(codes) > 1}


def clear_run_dir(spec_file: Path) -> None:
    """
    Delete everything beside ``spec_file`` in its run folder: what an interrupted run, or a finished run of other
    settings or code, left there. The worker calls it as the run starts, not the sweep as it plans: a sweep stopped
    before a run's turn leaves that run's earlier result where it was.
    """
    for path in spec_file.parent.iterdir():
        if path != spec_file:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def run_worker(spec_file: Path) -> None:
    """Train and evaluate one run with rl-zoo3's ``ExperimentManager``; its ``result.json`` goes beside ``spec_file``."""
    clear_run_dir(spec_file)
    spec, run_dir, start_process = json.loads(spec_file.read_text()), spec_file.parent, time.perf_counter()
    rss = lambda who: resource.getrusage(who).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)  # noqa: E731  MiB
    register()
    made_by = code_version(spec["algo"])  # as the run starts: the code it imported, the commit it was started from
    th.set_num_threads(spec["torch_threads"])
    set_random_seed(spec["seed"])
    rss_imports = rss(resource.RUSAGE_SELF)
    # The entry the run is keyed by, under the env's name, where rl-zoo3 looks (even for a fallback entry).
    config = run_dir / f"{spec['algo']}.yml"
    config.write_text(yaml.safe_dump({spec["env_id"]: spec["config"]["values"]}))
    manager = ExperimentManager(
        argparse.Namespace(**spec), spec["algo"], spec["env_id"], str(run_dir / "zoo"), n_timesteps=spec["n_timesteps"],
        eval_freq=0, save_freq=-1, seed=spec["seed"], log_interval=1, verbose=0, vec_env_type=spec["vec_env"],
        device=spec["device"], config=str(config),
    )  # fmt: skip
    setup_start = time.perf_counter()
    model, saved_hyperparams = manager.setup_experiment()
    model.set_logger(logger := configure(str(run_dir), ["csv"]))
    curve_env = manager.create_envs(1, eval_env=True)
    curve_env.seed(CURVE_SEED_OFFSET + spec["seed"])
    timing = TimedEvaluation(curve_env, spec["eval_freq"], spec["curve_episodes"], spec["n_timesteps"])
    manager.callbacks.append(timing)
    if spec.get("diagnostics") and spec["algo"] == "gpg":
        from diagnostics import RolloutDiagnostics

        manager.callbacks.append(RolloutDiagnostics(run_dir / "diagnostics.jsonl"))
    if (time_budget := spec.get("time_budget_s")) is not None:
        manager.callbacks.append(StopAtTrainingSeconds(timing, time_budget))
    setup_s = time.perf_counter() - setup_start
    manager.learn(model)
    logger.close()
    out_of_time = time_budget is not None and timing.train_seconds >= time_budget
    if model.num_timesteps < spec["n_timesteps"] and not out_of_time:  # rl-zoo3's learn() swallows KeyboardInterrupt
        raise SystemExit(f"training stopped at {model.num_timesteps} of {spec['n_timesteps']} env steps: no result written")
    final_env = manager.create_envs(1, eval_env=True)
    final_env.seed(FINAL_SEED_OFFSET + spec["seed"])
    final, returns, lengths = timing.evaluate(final_env, spec["eval_episodes"], "final")
    curve, train_wall = [*timing.curve, final], timing.train_seconds
    crossing = next((p for p in curve if spec["threshold"] is not None and p["mean"] >= spec["threshold"]), {})
    columns: dict[str, list[float]] = {}  # the logged values of progress.csv, finite numbers only
    with open(run_dir / "progress.csv", newline="") as file:
        for key, value in (item for row in csv.DictReader(file) for item in row.items()):
            with contextlib.suppress(TypeError, ValueError):
                columns.setdefault(key, []).extend([float(value)] if np.isfinite(float(value)) else [])
    logs = {key: float(np.mean(values)) for key, values in sorted(columns.items()) if values}
    result = {
        "key": run_key(spec), "algo": spec["algo"], "env_id": spec["env_id"], "seed": spec["seed"],
        "n_timesteps": spec["n_timesteps"], "env_steps": int(model.num_timesteps), "final_mean": final["mean"],
        "final_std": final["std"], "eval_episodes": len(returns), "eval_timesteps": int(np.sum(lengths)),
        "episode_returns": [float(r) for r in returns],
        "auc": curve_area([p["steps"] for p in curve], [p["mean"] for p in curve], spec["n_timesteps"]),
        "threshold": spec["threshold"], "threshold_steps": crossing.get("steps"), "threshold_wall_s": crossing.get("wall_s"),
        "train_wall_s": train_wall, "eval_wall_s": timing.seconds["evaluation"], "setup_s": setup_s,
        "process_wall_s": time.perf_counter() - start_process, "steps_per_s": model.num_timesteps / train_wall,
        "time_s": {k: timing.seconds[k] for k in ("rollout", "updates", "other")},
        "params": sum(p.numel() for p in model.policy.parameters()), "peak_rss_mib": rss(resource.RUSAGE_SELF),
        "rss_imports_mib": rss_imports, "children_peak_rss_mib": rss(resource.RUSAGE_CHILDREN),
        "idle_fraction": logs.get("rollout/idle_fraction"), "log_means": logs, "hyperparams_file": spec["config"]["file"],
        "hyperparams_entry": spec["config"]["entry"], "hyperparams": {k: str(v) for k, v in saved_hyperparams.items()},
        "torch_threads": spec["torch_threads"], "curve": curve, "time_budget_s": time_budget,
        "provenance": {**made_by, "config_hash": config_hash(spec["config"]["values"])},
    }  # fmt: skip
    write_atomic(run_dir / "result.json", result)


def plan_runs(args: argparse.Namespace, tasks: Sequence[Task], out: Path) -> list[dict[str, Any]]:
    """
    The specification of every run, in ``out/runs/<algo>/<env>/seed<seed>``: task-major, then the algorithms' i-th
    seeds in turn (``--algo-seeds`` gives an algorithm its own seeds), so that the algorithms' runs alternate and
    whatever else loads the machine meanwhile hits both alike.
    """
    common = {k: getattr(args, k) for k in ("eval_episodes", "curve_episodes", "vec_env", "device", "torch_threads")}
    common["diagnostics"] = getattr(args, "diagnostics", False)
    seeds = {algo: getattr(args, "algo_seeds", {}).get(algo, args.seeds) for algo in args.algos}
    specs = []
    for task in tasks:
        configs = {algo: zoo_entry(algo, task.env_id, args.conf) for algo in args.algos}
        for i in range(max(map(len, seeds.values()))):
            for algo, (path, entry, values) in configs.items():
                if i >= len(seeds[algo]):
                    continue
                seed = seeds[algo][i]
                config = dict(file=str(path), entry=entry, values=values)
                spec = dict(common, algo=algo, env_id=task.env_id, seed=seed, n_timesteps=task.n_timesteps, config=config)
                run_dir = out / "runs" / algo / task.env_id / f"seed{seed}"
                specs.append(spec | dict(eval_freq=task.eval_freq, threshold=task.threshold, run_dir=str(run_dir)))
    return specs


def plan_equal_time(specs: Sequence[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """
    GPG's equal-time runs, in ``out/runs/gpg-equal-time/<env>/seed<seed>``: for every task whose GPG and PPO runs of
    ``specs`` have all finished, each GPG seed again, training for PPO's median training seconds on the task
    (``time_budget_s``). Its step budget is that time at GPG's median steps per second in its own runs (so that
    learning-rate schedules end near the time budget); training stops at whichever comes first.
    """
    planned = []
    for env_id in dict.fromkeys(spec["env_id"] for spec in specs):
        runs = {a: [spec for spec in specs if (spec["env_id"], spec["algo"]) == (env_id, a)] for a in ("gpg", "ppo")}
        results = {a: [finished_result(spec) for spec in runs[a]] for a in runs}
        if not (runs["gpg"] and runs["ppo"]) or any(r is None for rs in results.values() for r in rs):
            continue
        seconds = round(float(np.median([r["train_wall_s"] for r in results["ppo"]])), 1)
        steps = int(np.median([r["steps_per_s"] for r in results["gpg"]]) * seconds)
        for spec in runs["gpg"]:
            run_dir = out / "runs" / "gpg-equal-time" / env_id / f"seed{spec['seed']}"
            timed = dict(n_timesteps=steps, eval_freq=max(1, steps // 20), time_budget_s=seconds, run_dir=str(run_dir))
            planned.append(spec | timed)
    return planned


def claim_run(run_dir: Path) -> int | None:
    """
    Claim a run folder for this process: an exclusive lock on the folder, held until the returned descriptor is
    closed or the process ends (a killed sweep leaves no stale claim). Several sweeps started on one output folder
    thereby split its runs instead of training one twice.

    :return: the descriptor holding the lock, or None if another process holds it
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def run_jobs(
    jobs: Sequence[tuple[list[str], Path]],
    n_jobs: int,
    on_finish: Callable,
    env: dict[str, str],
    may_start: Callable[[int], bool] = lambda index: True,
) -> None:
    """
    Run commands as subprocesses, ``n_jobs`` at a time, in order; on an exception the running ones are terminated.

    :param jobs: ``(command, log file)`` pairs; each command runs in its log file's folder
    :param n_jobs: most subprocesses at once
    :param on_finish: called with the job's index and exit status when it ends
    :param env: environment variables
    :param may_start: called with a job's index when its turn comes; False skips the job
    """
    pending, running = list(enumerate(jobs)), {}
    try:
        while pending or running:
            while pending and len(running) < n_jobs:
                index, (command, log) = pending.pop(0)
                if not may_start(index):
                    continue
                log.parent.mkdir(parents=True, exist_ok=True)
                with open(log, "w") as file:
                    running[subprocess.Popen(command, stdout=file, stderr=subprocess.STDOUT, cwd=log.parent, env=env)] = index
            if not (done := [process for process in running if process.poll() is not None]):
                time.sleep(0.1)
            for process in done:
                on_finish(running.pop(process), process.returncode)
    finally:
        for process in running:
            process.terminate()
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            process.kill()  # no-op once it has exited


def execute(
    todo: Sequence[dict[str, Any]], n_specs: int, args: argparse.Namespace, code: Callable[[str], str | None]
) -> list[str]:
    """
    Run the workers of ``todo`` (``args.n_jobs`` at a time), printing each run's summary as it finishes.

    :param n_specs: the number of runs of the sweep, finished ones included (for the ``[k/n]`` counter)
    :param code: an algorithm's current code version (None: any), as :func:`finished_result` takes it
    :return: the names of the runs that failed, then ``"interrupted"`` if the sweep was interrupted
    """
    failures: list[str] = []
    started, n_done, steps_done, steps_skipped = time.perf_counter(), n_specs - len(todo), 0, 0
    steps_total = sum(s["n_timesteps"] for s in todo)
    claims: dict[int, int] = {}

    def may_start(index: int) -> bool:
        # Another sweep on the same folder may be training this run, or have finished it since this one planned.
        nonlocal n_done, steps_skipped
        spec = todo[index]
        if (claim := claim_run(Path(spec["run_dir"]))) is not None:
            if finished_result(spec, code(spec["algo"])) is None:
                claims[index] = claim  # the worker clears what an earlier run left beside spec.json (clear_run_dir)
                write_atomic(Path(spec["run_dir"]) / "spec.json", spec)
                return True
            os.close(claim)
        n_done, steps_skipped = n_done + 1, steps_skipped + spec["n_timesteps"]
        print(f"[{n_done}/{n_specs}] {spec['algo']} {spec['env_id']} seed {spec['seed']}: left to another sweep", flush=True)
        return False

    def on_finish(index: int, returncode: int) -> None:
        nonlocal n_done, steps_done
        os.close(claims.pop(index))
        spec, n_done, steps_done = todo[index], n_done + 1, steps_done + todo[index]["n_timesteps"]
        name, elapsed = f"{spec['algo']} {spec['env_id']} seed {spec['seed']}", time.perf_counter() - started
        left = steps_total - steps_done - steps_skipped
        eta = elapsed * left / steps_done  # remaining steps at the rate so far
        if (r := finished_result(spec) if returncode == 0 else None) is None:
            failures.append(name)
            print(f"[{n_done}/{n_specs}] FAILED {name} (exit {returncode}): see {spec['run_dir']}/worker.log", flush=True)
        else:
            summary = (
                f"final {r['final_mean']:.1f} +/- {r['final_std']:.1f}, {r['env_steps']} steps, {r['train_wall_s']:.1f} s"
            )
            print(f"[{n_done}/{n_specs}] {name}: {summary} | elapsed {elapsed:.0f} s, ETA {eta:.0f} s", flush=True)

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the sweep like Ctrl-C: no run looks finished
    threads, worker = str(args.torch_threads), [sys.executable, str(Path(__file__).resolve()), "--worker"]
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "MPLBACKEND": "Agg"}
    jobs = [([*worker, f"{s['run_dir']}/spec.json"], Path(s["run_dir"], "worker.log")) for s in todo]
    try:
        run_jobs(jobs, args.n_jobs, on_finish, env, may_start)
    except KeyboardInterrupt:
        print("interrupted: the finished runs are kept; run the same command again to resume")
        failures.append("interrupted")
    return failures


def sweep(args: argparse.Namespace) -> int:
    """
    Run (or resume) the sweep, or with ``--report-only`` only read the finished runs; then write the reports.

    :return: exit status: 0, 1 if a run failed, 130 if interrupted
    """
    out, tasks = Path(args.out).resolve(), resolve_tasks(args)
    specs = plan_runs(args, tasks, out)
    current = {algo: code_version(algo)["code"] for algo in args.algos}
    code = lambda algo: None if args.allow_mixed_code else current[algo]  # noqa: E731
    todo = [] if args.report_only else [spec for spec in specs if finished_result(spec, code(spec["algo"])) is None]
    failures: list[str] = []
    n_done = len(specs) - len(todo)
    if not args.report_only:
        packages = {"sb3-gpg", "stable-baselines3", "rl-zoo3", "torch", "gymnasium", "numpy", "pandas", "mujoco", "box2d"}
        versions = {d.name: d.version for d in metadata.distributions() if d.name.lower().replace("_", "-") in packages}
        info = {"command": " ".join(sys.argv), "args": vars(args), "tasks": [vars(t) for t in tasks], "versions": versions}
        write_atomic(out / "config.json", {**info, "python": sys.version, "cpus": os.cpu_count()})
        print(
            f"{len(specs)} runs: {n_done} finished earlier (skipped), {len(todo)} to run, {args.n_jobs} at a time, into {out}"
        )
        for t in tasks:
            print(f"  {t.env_id}: {t.n_timesteps} steps ({t.budget_source}), evaluated every {t.eval_freq}")

    failures += execute(todo, len(specs), args, code)
    if failures and failures[-1] == "interrupted":
        return 130
    equal_time: list[dict[str, Any]] = []
    if args.equal_time and {"gpg", "ppo"} <= set(args.algos):
        timed = plan_equal_time(specs, out)
        timed_todo = [] if args.report_only else [s for s in timed if finished_result(s, code("gpg")) is None]
        if timed_todo:
            print(f"equal-time runs: {len(timed_todo)} of {len(timed)} to run (GPG for PPO's median training seconds)")
        failures += execute(timed_todo, len(timed), args, code)
        if failures and failures[-1] == "interrupted":
            return 130
        equal_time = [result for spec in timed if (result := finished_result(spec)) is not None]
    import bench_report

    if not (results := [result for spec in specs if (result := finished_result(spec)) is not None]):
        return print("no finished runs: no report") or 1
    if (mixed := mixed_code(results)) and not args.allow_mixed_code:
        for algo, codes in mixed.items():
            print(
                f"{algo}'s runs come from {len(codes)} code versions ({', '.join(codes)}): no report. Run the sweep "
                "again to redo the runs of older code, or pass --allow-mixed-code to report them as they are."
            )
        return 1
    command = " ".join(["python", "scripts/benchmark.py", *sys.argv[1:]])
    history = json.loads((out / "history.json").read_text()) if (out / "history.json").exists() else {}
    reports = bench_report.reports(results, tasks, args.algos, args.bootstrap_reps, command, equal_time, history)
    for name, data in reports.items():
        write_atomic(out / name, data)
    bench_report.plot_curves(out, results, args.algos, {t.env_id: t.threshold for t in tasks})
    print(f"reports in {out}: {', '.join(reports)}, curves/<env>.png")
    if failures:
        print(f"{len(failures)} run(s) failed; run the same command again to retry them.")
    return 1 if failures else 0


def seed_range(text: str, parser: argparse.ArgumentParser) -> list[int]:
    """``"10-19"`` -> ``[10, ..., 19]``; ``"3,5"`` -> ``[3, 5]``."""
    try:
        first, sep, last = text.partition("-")
        seeds = list(range(int(first), int(last) + 1)) if sep else [int(s) for s in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds:
        parser.error(f"--algo-seeds takes ALGO=FIRST-LAST or ALGO=S1,S2,..., not ...={text}")
    return seeds


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (default: ``sys.argv[1:]``); with ``--smoke``, :data:`SMOKE` gives the defaults."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--tasks", nargs="+", default=DEFAULT_TASKS, help=f"Gymnasium ids (default: {' '.join(DEFAULT_TASKS)})")
    add("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="seeds (default: 0 1 2 3 4)")
    add("--algo-seeds", action="append", metavar="ALGO=FIRST-LAST", help="an algorithm's own seeds instead; repeatable")
    add("--algos", nargs="+", choices=ALGOS, default=list(ALGOS), help="algorithms (default: gpg ppo)")
    add(
        "--conf",
        action="append",
        metavar="ALGO[:ENV]=FILE",
        help="an algorithm's rl-zoo3 configuration file, or its file for one task (ppo:Hopper-v5=FILE); repeatable",
    )
    add("--n-timesteps", type=int, help="env-step budget of every task (default: rl-zoo3's PPO budget)")
    add("--budget", action="append", metavar="ENV=STEPS", help="env-step budget of one task; repeatable")
    add("--eval-freq", type=int, help="env steps between evaluations (default: budget / 20)")
    add("--eval-episodes", type=int, default=20, help="episodes of the final evaluation (default: 20)")
    add("--curve-episodes", type=int, default=10, help="episodes of each periodic evaluation (default: 10)")
    add("--out", default="benchmarks/gpg_vs_ppo", help="output folder (default: %(default)s; --smoke: benchmarks/smoke)")
    add("--n-jobs", type=int, default=1, help="runs at once, one process each (default: 1)")
    add("--smoke", action="store_true", help="tiny budget, seed 0, CartPole-v1 only")
    add("--vec-env", choices=("dummy", "subproc"), default="dummy", help="VecEnv of the runs")
    add("--device", default="cpu", help="torch device (default: cpu)")
    add("--torch-threads", type=int, default=1, help="torch threads per run (default: 1)")
    add("--bootstrap-reps", type=int, default=2000, help="bootstrap resamples of the aggregates")
    add("--report-only", action="store_true", help="rewrite the reports from the finished runs, run nothing")
    add("--equal-time", action="store_true", help="then train GPG again for PPO's median training seconds per task")
    add("--allow-mixed-code", action="store_true", help="keep finished runs of other code versions and report them together")
    add("--diagnostics", action="store_true", help="GPG runs write diagnostics.jsonl (scripts/diagnostics.py)")
    add("--worker", help=argparse.SUPPRESS)
    if (args := parser.parse_args(argv)).smoke:
        parser.set_defaults(**SMOKE, out="benchmarks/smoke")
        args = parser.parse_args(argv)
    args.conf = parse_pairs(args.conf, "--conf", str)
    args.algo_seeds = {
        algo: seed_range(text, parser) for algo, text in parse_pairs(args.algo_seeds, "--algo-seeds", str).items()
    }
    if bad := sorted(set(args.algo_seeds) - set(ALGOS)):
        parser.error(f"--algo-seeds {bad[0]}=...: ALGO must be one of {', '.join(ALGOS)}")
    conf_bad = lambda name, path: name.partition(":")[0] not in ALGOS or not Path(path).is_file()  # noqa: E731
    if bad := [f"{name}={path}" for name, path in args.conf.items() if conf_bad(name, path)]:
        parser.error(f"--conf {bad[0]}: ALGO must be one of {', '.join(ALGOS)} and FILE an existing file")
    if unknown := sorted({name.partition(":")[2] for name in args.conf} - {""} - set(args.tasks)):
        parser.error(f"--conf names {unknown[0]}, which is not among --tasks")
    if bad := [
        k for k in ("n_jobs", "eval_episodes", "curve_episodes", "torch_threads", "bootstrap_reps") if vars(args)[k] < 1
    ]:
        parser.error(f"--{bad[0].replace('_', '-')} must be >= 1")
    return args


if __name__ == "__main__":  # the sweep, or one run (--worker)
    args = parse_args()
    sys.exit(sweep(args) if args.worker is None else run_worker(Path(args.worker)) or 0)
