"""
GPG against SB3 PPO, and studies of their variants, through rl-zoo3: each run a Ray task (a CPU per torch thread).

Each run trains the model rl-zoo3's ``ExperimentManager`` builds from its configuration entry (``hyperparams/gpg.yml``,
rl-zoo3's ``ppo.yml``, ``--conf ALGO[:ENV]=FILE`` or a study's variant), by default for rl-zoo3's PPO budget of the
task, in a fresh subprocess on a Ray node (on this machine, ``--n-jobs`` CPUs, or a running cluster, ``--address``),
then evaluates it. This script writes each run's ``result.json`` atomically, once; a restarted sweep skips the runs whose
result holds the same settings and code, and Ray retries a run whose worker or node dies. ``bench_report.py`` writes
the reports. Usage (docs: the page on sweeps and studies)::

    python scripts/benchmark.py --out benchmarks/gpg_vs_ppo --n-jobs 8
    python scripts/benchmark.py --address auto --out benchmarks/gpg_vs_ppo      # a running Ray cluster
    python scripts/benchmark.py --study benchmarks/branching/study.yml --variants h200-i100-m4
    python scripts/benchmark.py --smoke --out /tmp/smoke
"""

import argparse
import ast
import contextlib
import copy
import csv
import ctypes
import dataclasses
import hashlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
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

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))  # bench_report, imported by the sweep only: the workers'
# peak memory (a reported result) must not include pandas' and scipy's
ALGOS = ("gpg", "ppo")
DEFAULT_TASKS = (
    "CartPole-v1 Acrobot-v1 Pendulum-v1 LunarLander-v3 LunarLanderContinuous-v3 HalfCheetah-v5 Hopper-v5 Walker2d-v5 Ant-v5"
).split()
#: Thresholds of tasks whose env spec has none (Pendulum-v1: swings up and holds in nearly every episode).
EXTRA_THRESHOLDS = {"Pendulum-v1": -200.0}
#: Mean return of uniformly random actions (:func:`random_score`, 100 episodes); other tasks are measured (20).
RANDOM_SCORES = dict(zip(DEFAULT_TASKS, (23.7, -497.1, -1207.6, -192.0, -212.7, -282.5, 16.7, 1.8, -48.05), strict=True))
#: ``--smoke``'s defaults: seed 0 on CartPole-v1, 3000 steps, 5 evaluation episodes every 1000.
SMOKE = {"tasks": ["CartPole-v1"], "seeds": [0], "n_timesteps": 3000, "eval_freq": 1000, "curve_episodes": 5}
CURVE_SEED_OFFSET, FINAL_SEED_OFFSET = 20_000, 10_000  # evaluation envs' seeds (training envs: the run's seed)
#: Settings that identify a run, with its configuration's entry and values: a result is reused only if they match.
KEY = ("algo", "env_id", "seed", "n_timesteps", "eval_freq", "eval_episodes", "curve_episodes", "vec_env", "device")
#: Evaluation options a study file may set (the command line's otherwise).
STUDY_OPTIONS = ("eval_freq", "eval_episodes", "curve_episodes")


def write_atomic(path: Path, data: Any, indent: int | None = 2) -> None:
    """Write text (a ``str``) or JSON (``indent``; ``None``: one line) so that ``path`` holds its old or whole new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as file:
        file.write(data if isinstance(data, str) else json.dumps(data, indent=indent, default=str))
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
            match getattr(node, "body", None):
                case [ast.Expr(value=ast.Constant(value=str())), *rest]:
                    node.body = rest or [ast.Pass()]  # type: ignore[attr-defined]
        digest.update(f"{path.relative_to(root).as_posix()}\0{ast.dump(tree)}\0".encode())
    return digest.hexdigest()[:12]


def code_version(algo: str) -> dict[str, Any]:
    """
    What made a run: its algorithm's code version (``code``: for GPG, sb3-gpg's version and :func:`source_hash` of its
    sources, which unlike a commit ignores docs and configurations; for PPO, Stable-Baselines3's), the checkout's git
    commit and whether it had uncommitted changes. The sweep redoes runs of other code; the reports refuse to mix two.
    """
    import sb3_gpg

    git = lambda *a: subprocess.run(["git", *a], cwd=SCRIPTS, capture_output=True, text=True).stdout.strip()  # noqa: E731
    package = Path(sb3_gpg.__file__).parent
    if algo == "gpg":
        code = f"sb3-gpg {sb3_gpg.__version__} {source_hash(list(package.rglob('*.py')), package.parent)}"
    else:
        code = f"stable-baselines3 {metadata.version('stable-baselines3')}"
    return {"code": code, "git_commit": git("rev-parse", "HEAD") or None, "git_dirty": bool(git("status", "--porcelain"))}


def versions() -> dict[str, str]:
    """The versions of Python and of the packages a run depends on, as installed where it runs."""
    wanted = {"sb3-gpg", "stable-baselines3", "rl-zoo3", "torch", "gymnasium", "numpy", "mujoco", "box2d", "ray"}
    found = {d.name: d.version for d in metadata.distributions() if d.name.lower().replace("_", "-") in wanted}
    return found | {"python": sys.version.split()[0]}


def config_hash(values: dict[str, Any]) -> str:
    """A short hash of a configuration entry's values (key order does not matter)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]


def curve_area(steps: Sequence[float], returns: Sequence[float], budget: float) -> float:
    """Mean over ``[0, budget]`` steps of ``returns`` against ``steps``: linear between points, flat outside; NaN if none."""
    x, y = np.asarray(steps, dtype=float), np.asarray(returns, dtype=float)
    if x.size == 0:
        return float("nan")
    order, grid = np.argsort(x, kind="stable"), np.unique(np.concatenate([[0.0], x[x < budget], [float(budget)]]))
    return float(np.trapezoid(np.interp(grid, x[order], y[order]), grid) / budget)


class TimedEvaluation(BaseCallback):
    """
    Evaluation curve against env steps and training seconds, and the split of the training time.

    Training seconds run from ``on_training_start`` to ``on_training_end``, evaluations excluded; of them, ``rollout``
    from ``on_rollout_start`` to ``on_rollout_end`` (env steps, inference, buffer, advantages), ``updates`` from there
    to the next rollout (``train()``, logger dump), ``other`` the rest. Training CPU seconds are the process's CPU time
    (``time.process_time``: all its threads, user and system) over the same span, evaluations excluded: unlike
    wall-clock, they do not grow when other processes load the machine.

    :param eval_env: evaluation VecEnv (``VecNormalize`` statistics copied from the training env), or ``None``
    :param eval_freq: env steps between evaluations (the first at step 0)
    :param n_episodes: deterministic episodes per evaluation
    :param budget: no evaluation is scheduled past this many env steps
    :param cpu_budget: training stops after this many training CPU seconds (the runs of equal compute), if given
    """

    def __init__(
        self,
        eval_env: VecEnv | None = None,
        eval_freq: int = 1,
        n_episodes: int = 1,
        budget: int = 0,
        cpu_budget: float | None = None,
    ) -> None:
        super().__init__()
        self.eval_env, self.eval_freq, self.n_episodes, self.budget = eval_env, eval_freq, n_episodes, budget
        self.cpu_budget, self.next_eval, self.phase = cpu_budget, 0, "other"
        self.curve: list[dict[str, Any]] = []
        self.seconds = dict.fromkeys(("rollout", "updates", "other", "evaluation"), 0.0)
        # mark: when the running phase began (perf_counter); cpu_*: process_time
        self.mark = self.start = self.end = self.cpu_start = self.cpu_end = self.cpu_evaluation = 0.0

    @property
    def train_seconds(self) -> float:
        """Training seconds so far (all of them once training ended), evaluations excluded."""
        return (self.end or time.perf_counter()) - self.start - self.seconds["evaluation"]

    @property
    def train_cpu_seconds(self) -> float:
        """Training CPU seconds so far (all of them once training ended), evaluations excluded."""
        return (self.cpu_end or time.process_time()) - self.cpu_start - self.cpu_evaluation

    def evaluate(self, env: VecEnv, n_episodes: int, nominal: int | str) -> tuple[dict[str, Any], list[float], list[int]]:
        """
        Evaluate the deterministic policy on ``n_episodes`` of ``env``, outside the training time.

        :return: the curve point (``nominal``: the scheduled env step or ``"final"``; ``steps``; ``wall_s``: training
            seconds; ``mean``, ``std`` and number of ``episodes``), the episodes' returns and lengths
        """
        start, cpu, wall = time.perf_counter(), time.process_time(), self.train_seconds
        sync_envs_normalization(self.model.get_env(), env)
        returns, lengths = evaluate_policy(self.model, env, n_episodes, deterministic=True, return_episode_rewards=True)
        if not self.end:  # during training: neither training time nor the running phase's
            elapsed, self.cpu_evaluation = time.perf_counter() - start, self.cpu_evaluation + time.process_time() - cpu
            self.seconds["evaluation"] += elapsed
            self.mark += elapsed  # the same seconds: the phases and the training time add up
        stats = {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "episodes": len(returns)}
        return {"nominal": nominal, "steps": int(self.model.num_timesteps), "wall_s": wall, **stats}, returns, lengths

    def _switch(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[self.phase] += now - self.mark
        self.phase, self.mark = phase, now

    def _on_training_start(self) -> None:
        self.start = self.mark = time.perf_counter()
        self.cpu_start = time.process_time()
        self._on_step()

    def _on_rollout_start(self) -> None:
        self._switch("rollout")

    def _on_step(self) -> bool:
        if self.eval_env is not None and self.next_eval <= min(self.model.num_timesteps, self.budget):
            self.curve.append(self.evaluate(self.eval_env, self.n_episodes, self.next_eval)[0])
            self.next_eval += self.eval_freq * (1 + (self.model.num_timesteps - self.next_eval) // self.eval_freq)
        return self.cpu_budget is None or self.train_cpu_seconds < self.cpu_budget

    def _on_rollout_end(self) -> None:
        self._switch("updates")
        # Resident memory after every rollout, in the run's log: growth over a run would show a leak.
        with contextlib.suppress(OSError):  # /proc: Linux
            pages = int(Path("/proc/self/statm").read_text().split()[1])
            self.logger.record("memory/rss_mib", pages * os.sysconf("SC_PAGE_SIZE") / 2**20)

    def _on_training_end(self) -> None:
        self._switch("other")
        self.end, self.cpu_end = time.perf_counter(), time.process_time()


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
    if given := conf.get(f"{algo}:{env_id}", conf.get(algo)):
        path = Path(given).resolve()
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
    known = RANDOM_SCORES | (getattr(args, "random_scores", None) or {})  # a study's own
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
        random = known[env_id] if env_id in known else random_score(env_id, 20)
        eval_freq = args.eval_freq or max(1, budget // 20)
        tasks.append(Task(env_id, budget, source, eval_freq, threshold, threshold_source if threshold else "none", random))
    return tasks


def run_key(spec: dict[str, Any]) -> dict[str, Any]:
    """
    What identifies a run (``spec``: its specification, or the ``key`` of a ``result.json`` of this or an earlier version):
    :data:`KEY`, and its configuration's entry and values (not the file's path).
    """
    key = {**{name: spec[name] for name in KEY}, "config": {k: v for k, v in spec["config"].items() if k != "file"}}
    budgets = ("time_budget_s", "cpu_budget_s")  # wall-clock (earlier equal-time runs), CPU seconds (equal compute)
    return key | {name: spec[name] for name in budgets if spec.get(name) is not None}


def result_code(result: dict[str, Any]) -> str:
    """The code version that made a result (``"unrecorded"`` for results written before runs recorded it)."""
    return result.get("provenance", {}).get("code", "unrecorded")


def finished_result(spec: dict[str, Any], code: str | None = None) -> dict[str, Any] | None:
    """The run's readable ``result.json`` if it has the same :func:`run_key` and (if given) ``code``, else ``None``."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
        result = json.loads((Path(spec["run_dir"]) / "result.json").read_text())
        if run_key(result["key"]) == run_key(spec) and code in (None, result_code(result)):
            return result
    return None


def needs_run(spec: dict[str, Any], code: str | None = None, cpu: bool = False) -> bool:
    """
    Whether a run is to be made: it has no :func:`finished_result` (with ``code``, if given) or, with ``cpu`` (equal
    compute, which needs every run's CPU seconds), only one made before runs recorded them.
    """
    result = finished_result(spec, code)
    return result is None or (cpu and "train_cpu_s" not in result)


def mixed_code(results: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """The algorithms whose results come from more than one code version, with those versions."""
    versions: dict[str, set[str]] = {}
    for result in results:
        versions.setdefault(result["algo"], set()).add(result_code(result))
    return {algo: sorted(codes) for algo, codes in versions.items() if len(codes) > 1}


def log_curve(columns: dict[str, list[float]], steps: list[float], budget: int, periods: int = 20) -> dict[str, list]:
    """
    The logged values summarised by period of training: each key's mean over the rows of each twentieth of the budget
    (``None`` where it logged nothing), so that a result shows how a run's statistics moved without its log.

    :param columns: the logged values of each row (NaN where a row does not log the key), by key
    :param steps: ``time/total_timesteps`` of each row
    """
    period = np.minimum((np.asarray(steps) * periods) // max(budget, 1), periods - 1).astype(int)
    curve: dict[str, list] = {}
    for key, values in columns.items():
        x = np.asarray(values, dtype=float)
        means = [x[(period == p) & np.isfinite(x)] for p in range(periods)]
        curve[key] = [round(float(m.mean()), 6) if m.size else None for m in means]
    return curve


def run_worker(spec_file: Path) -> None:
    """Train and evaluate one run with rl-zoo3's ``ExperimentManager``; its ``result.json`` goes beside ``spec_file``."""
    if (parent := os.environ.get("SB3_GPG_PARENT")) and sys.platform == "linux":
        # Die with the Ray worker that started this run (prctl PR_SET_PDEATHSIG = 1), so that a run whose worker was
        # killed does not train on beside its retry; set here, after exec, rather than between fork and exec.
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != int(parent):
            raise SystemExit("the Ray worker that started this run is gone")
    spec, run_dir, start_process = json.loads(spec_file.read_text()), spec_file.parent, time.perf_counter()
    rss = lambda who: resource.getrusage(who).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)  # noqa: E731  MiB
    register()
    made_by = code_version(spec["algo"]) | spec.get("git", {})  # the code it imports; the sweep's checkout
    node = {"hostname": socket.gethostname(), "ray_node_id": os.environ.get("SB3_GPG_RAY_NODE")}  # set by run_task
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
    cpu_budget = spec.get("cpu_budget_s")
    timing = TimedEvaluation(curve_env, spec["eval_freq"], spec["curve_episodes"], spec["n_timesteps"], cpu_budget)
    manager.callbacks.append(timing)
    setup_s = time.perf_counter() - setup_start
    manager.learn(model)
    logger.close()
    out_of_time = cpu_budget is not None and timing.train_cpu_seconds >= cpu_budget
    if model.num_timesteps < spec["n_timesteps"] and not out_of_time:  # rl-zoo3's learn() swallows KeyboardInterrupt
        raise SystemExit(f"training stopped at {model.num_timesteps} of {spec['n_timesteps']} env steps: no result written")
    final_env = manager.create_envs(1, eval_env=True)
    final_env.seed(FINAL_SEED_OFFSET + spec["seed"])
    final, returns, lengths = timing.evaluate(final_env, spec["eval_episodes"], "final")
    curve, train_wall, train_cpu = [*timing.curve, final], timing.train_seconds, timing.train_cpu_seconds
    crossing = next((p for p in curve if spec["threshold"] is not None and p["mean"] >= spec["threshold"]), {})
    with open(run_dir / "progress.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    columns: dict[str, list[float]] = {}  # the logged values of progress.csv by key, NaN where a row has none
    for key in sorted({key for row in rows for key in row}):
        with contextlib.suppress(TypeError, ValueError):  # a column of text: no statistic
            columns[key] = [float(row.get(key) or "nan") for row in rows]
    logs = {key: float(np.nanmean(values)) for key, values in columns.items() if np.isfinite(values).any()}
    steps = columns.get("time/total_timesteps", [0.0] * len(rows))
    logged = {key: values for key, values in columns.items() if key in logs and not key.startswith("time/")}
    result = {
        "key": run_key(spec), "algo": spec["algo"], "env_id": spec["env_id"], "seed": spec["seed"],
        "n_timesteps": spec["n_timesteps"], "env_steps": int(model.num_timesteps), "final_mean": final["mean"],
        "final_std": final["std"], "eval_episodes": len(returns), "eval_timesteps": int(np.sum(lengths)),
        "episode_returns": [float(r) for r in returns],
        "auc": curve_area([p["steps"] for p in curve], [p["mean"] for p in curve], spec["n_timesteps"]),
        "threshold": spec["threshold"], "threshold_steps": crossing.get("steps"), "threshold_wall_s": crossing.get("wall_s"),
        "train_wall_s": train_wall, "eval_wall_s": timing.seconds["evaluation"], "setup_s": setup_s,
        "process_wall_s": time.perf_counter() - start_process, "steps_per_s": model.num_timesteps / train_wall,
        "train_cpu_s": train_cpu, "steps_per_cpu_s": model.num_timesteps / train_cpu,
        "time_s": {k: timing.seconds[k] for k in ("rollout", "updates", "other")},
        "params": sum(p.numel() for p in model.policy.parameters()), "peak_rss_mib": rss(resource.RUSAGE_SELF),
        "rss_imports_mib": rss_imports, "children_peak_rss_mib": rss(resource.RUSAGE_CHILDREN),
        "idle_fraction": logs.get("rollout/idle_fraction"), "log_means": logs,
        "log_curve": log_curve(logged, steps, spec["n_timesteps"]), "hyperparams_file": spec["config"]["file"],
        "hyperparams_entry": spec["config"]["entry"], "hyperparams": {k: str(v) for k, v in saved_hyperparams.items()},
        "torch_threads": spec["torch_threads"], "curve": curve, "cpu_budget_s": cpu_budget,
        "provenance": {**made_by, "config_hash": config_hash(spec["config"]["values"]), "node": node, "versions": versions()},
    }  # fmt: skip
    write_atomic(run_dir / "result.json", result)  # in the task's temporary folder: read back by run_task


def load_study(path: Path, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """
    The variants of a study file (YAML; its format: the docs' page on sweeps and studies), each completed from the
    study's defaults: ``name``, ``algo``, ``conf`` (a path or ``None``), ``unset``, ``set``, ``out`` (its folder),
    ``tasks``, ``seeds``, ``reference`` and the study's evaluation options.

    :param names: the variants to keep (default: all), in the file's order
    """
    study = yaml.safe_load(path.read_text())
    variants = study.get("variants") or {}
    if unknown := sorted(set(names or []) - set(variants)):
        raise SystemExit(f"{path} has no variant {unknown[0]} (it has: {', '.join(variants)})")
    kept = {name: variant for name, variant in variants.items() if not names or name in names}
    if bad := [name for name, variant in kept.items() if variant.get("algo", "gpg") not in ALGOS]:
        raise SystemExit(f"{path}: variant {bad[0]}'s algo must be one of {', '.join(ALGOS)}")
    return [
        {
            "name": name, "algo": variant.get("algo", "gpg"),
            "conf": path.parent / variant["conf"] if "conf" in variant else None,
            "unset": variant.get("unset", []), "set": variant.get("set", {}), "out": path.parent / variant.get("folder", name),
            "tasks": variant.get("tasks", list(study["tasks"])), "seeds": variant.get("seeds", study["seeds"]),
            "reference": variant.get("reference", study.get("reference")),
            **{k: study[k] for k in STUDY_OPTIONS if k in study},
        }
        for name, variant in kept.items()
    ]  # fmt: skip


def variant_config(variant: dict[str, Any], env_id: str, conf: dict[str, str]) -> dict[str, Any]:
    """A run's configuration: its variant's entry for ``env_id`` (:func:`zoo_entry`), values unset and set."""
    conf = {variant["algo"]: str(variant["conf"])} if variant.get("conf") else conf
    path, key, values = zoo_entry(variant["algo"], env_id, conf)
    values = {k: v for k, v in values.items() if k not in variant.get("unset", [])} | copy.deepcopy(variant.get("set", {}))
    return dict(file=str(path), entry=key, values=values)


def plan_runs(args: argparse.Namespace, tasks: Sequence[Task], out: Path) -> list[dict[str, Any]]:
    """
    The specification of every run, in ``<variant's folder>/runs/<algo>/<env>/seed<seed>`` (``out`` for the plain
    sweep's algorithms): task-major, then the variants' i-th seeds in turn (``--algo-seeds`` gives an algorithm its own
    seeds), so that the variants' runs alternate and whatever else loads the machine meanwhile hits all alike.
    """
    common = {k: getattr(args, k) for k in ("eval_episodes", "curve_episodes", "vec_env", "device", "torch_threads")}
    variants = getattr(args, "variants", None) or [
        {"name": algo, "algo": algo, "out": out, "seeds": args.algo_seeds.get(algo, args.seeds)} for algo in args.algos
    ]
    specs = []
    for task in tasks:
        planned = []  # (i, j, spec): the i-th seed of the task's j-th variant
        for j, variant in enumerate(v for v in variants if task.env_id in v.get("tasks", [task.env_id])):
            algo, config = variant["algo"], variant_config(variant, task.env_id, args.conf)
            options = common | {"eval_freq": task.eval_freq} | {k: variant[k] for k in STUDY_OPTIONS if k in variant}
            for i, seed in enumerate(variant["seeds"]):
                run_dir = Path(variant["out"]) / "runs" / algo / task.env_id / f"seed{seed}"
                spec = dict(options, algo=algo, env_id=task.env_id, seed=seed, n_timesteps=task.n_timesteps, config=config)
                planned.append((i, j, spec | dict(threshold=task.threshold, run_dir=str(run_dir), variant=variant["name"])))
        specs += [spec for _, _, spec in sorted(planned, key=lambda p: p[:2])]
    return specs


def plan_equal_compute(specs: Sequence[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """
    GPG's runs of equal compute, in ``out/runs/gpg-equal-compute/<env>/seed<seed>``: for every task whose GPG and PPO
    runs of ``specs`` have all finished, each GPG seed again, training for PPO's median training CPU seconds on the
    task (``cpu_budget_s``; one torch thread per run). Its step budget is that CPU time at GPG's median steps per CPU
    second in its own runs (so that learning-rate schedules end near it); training stops at whichever comes first.
    """
    planned = []
    for env_id in dict.fromkeys(spec["env_id"] for spec in specs):
        runs = {a: [spec for spec in specs if (spec["env_id"], spec["algo"]) == (env_id, a)] for a in ("gpg", "ppo")}
        results = {a: [finished_result(spec) for spec in runs[a]] for a in runs}
        if not all(runs.values()) or not all(r and "train_cpu_s" in r for rs in results.values() for r in rs):
            if all(runs.values()) and all(results["gpg"] + results["ppo"]):
                print(f"equal compute: {env_id}'s runs record no CPU seconds (made before they were): none planned")
            continue
        seconds = round(float(np.median([r["train_cpu_s"] for r in results["ppo"]])), 1)
        steps = int(np.median([r["steps_per_cpu_s"] for r in results["gpg"]]) * seconds)
        timed = dict(n_timesteps=steps, eval_freq=max(1, steps // 20), cpu_budget_s=seconds)
        folder = out / "runs" / "gpg-equal-compute" / env_id
        planned += [spec | timed | {"run_dir": str(folder / f"seed{spec['seed']}")} for spec in runs["gpg"]]
    return planned


def run_task(spec: dict[str, Any]) -> dict[str, Any]:
    """
    One run, as a Ray task: train it in a subprocess (:func:`run_worker`) in a temporary folder on this node.

    :return: ``result`` (the run's result, or ``None`` if its worker failed), ``returncode`` and ``log`` (the worker's
        output, its last 200 lines)
    """
    import ray

    env = os.environ | dict.fromkeys(("OMP_NUM_THREADS", "MKL_NUM_THREADS"), str(spec["torch_threads"]))
    env |= {"MPLBACKEND": "Agg", "SB3_GPG_RAY_NODE": ray.get_runtime_context().get_node_id()}
    with tempfile.TemporaryDirectory(prefix="sb3-gpg-run-") as folder:
        write_atomic(spec_file := Path(folder, "spec.json"), spec)
        with open(log := Path(folder, "worker.log"), "w") as file:
            # This script as Ray's working_dir placed it on the node: the task's working directory.
            command = [sys.executable, str(Path.cwd() / "benchmark.py"), "--worker", str(spec_file)]
            env["SB3_GPG_PARENT"] = str(os.getpid())  # run_worker dies with this process
            returncode = subprocess.call(command, stdout=file, stderr=subprocess.STDOUT, cwd=folder, env=env)
        result = Path(folder, "result.json")
        text = "\n".join(log.read_text(errors="replace").splitlines()[-200:])
        return {"result": json.loads(result.read_text()) if returncode == 0 else None, "returncode": returncode, "log": text}


def execute(todo: Sequence[dict[str, Any]], n_specs: int, args: argparse.Namespace) -> list[str]:
    """
    Run ``todo`` as Ray tasks, writing each finished run's ``result.json`` and printing its summary as it comes.

    :param n_specs: the number of runs of the sweep, finished ones included (for the ``[k/n]`` counter)
    :return: the names of the runs that failed, then ``"interrupted"`` if the sweep was interrupted
    """
    if not todo:
        return []
    import ray

    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # "local": a new instance on this machine, even where a cluster started by `ray start` runs.
        local = {"num_cpus": args.n_jobs, "include_dashboard": False}
        where = {"address": args.address or "local"} | ({} if args.address else local)
        # The runs' code goes to every node with the task (this folder, as Ray's working_dir); sb3-gpg and its
        # dependencies must be installed there, as scripts/install.sh installs them (the result records its code).
        ray.init(**where, runtime_env={"working_dir": str(SCRIPTS)}, log_to_driver=False, logging_level="warning")
    # max_retries: Ray reruns a task whose worker process or node died; a run that fails (its worker exits with an
    # error) returns normally and is not retried.
    task = ray.remote(max_retries=args.max_retries)(run_task)
    pending = {task.options(num_cpus=spec["torch_threads"]).remote(spec): spec for spec in todo}  # a CPU per thread
    failures: list[str] = []
    started, n_done, steps_done, steps_total = time.perf_counter(), n_specs - len(todo), 0, sum(s["n_timesteps"] for s in todo)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the sweep like Ctrl-C
    try:
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ref)
            variant = f" ({spec['variant']})" if spec.get("variant", spec["algo"]) != spec["algo"] else ""
            name, n_done = f"{spec['algo']} {spec['env_id']} seed {spec['seed']}{variant}", n_done + 1
            try:
                done = ray.get(ref)
            except ray.exceptions.RayError as error:  # the task's node or worker died more than --max-retries times
                done = {"result": None, "returncode": None, "log": repr(error)}
            run_dir, steps_done = Path(spec["run_dir"]), steps_done + spec["n_timesteps"]
            write_atomic(run_dir / "worker.log", done["log"] + "\n")
            elapsed = time.perf_counter() - started
            eta = elapsed * (steps_total - steps_done) / steps_done  # remaining steps at the rate so far
            if (r := done["result"]) is None:
                failures.append(name)
                print(f"[{n_done}/{n_specs}] FAILED {name} (exit {done['returncode']}): see {run_dir}/worker.log", flush=True)
                continue
            write_atomic(run_dir / "result.json", r, indent=None)
            summary = "final {final_mean:.1f} +/- {final_std:.1f}, {env_steps} steps, {train_cpu_s:.1f} CPU s".format_map(r)
            print(f"[{n_done}/{n_specs}] {name}: {summary} | elapsed {elapsed:.0f} s, ETA {eta:.0f} s", flush=True)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        print("interrupted: the finished runs are kept; run the same command again to resume")
        failures.append("interrupted")
    return failures


def sweep(args: argparse.Namespace) -> int:
    """
    Run (or resume) the sweep or study, or with ``--report-only`` only read the finished runs; then write the reports.

    :return: exit status: 0, 1 if a run failed, 130 if interrupted
    """
    out, tasks = Path(args.out).resolve(), resolve_tasks(args)
    specs = plan_runs(args, tasks, out)
    code = {algo: None if args.allow_mixed_code else code_version(algo)["code"] for algo in ALGOS}
    to_run = lambda planned: [s for s in planned if needs_run(s, code[s["algo"]], args.equal_compute)]  # noqa: E731
    git = {k: v for k, v in code_version("ppo").items() if k != "code"}  # the checkout the sweep runs from
    todo = [] if args.report_only else [spec | {"git": git} for spec in to_run(specs)]
    if not args.report_only:
        where = f"on the Ray cluster at {args.address}" if args.address else f"{args.n_jobs} at a time"
        print(f"{len(specs)} runs: {len(specs) - len(todo)} finished earlier (skipped), {len(todo)} to run, {where}")
        for t in tasks:
            print(f"  {t.env_id}: {t.n_timesteps} steps ({t.budget_source}), evaluated every {t.eval_freq}")
    failures = execute(todo, len(specs), args)
    equal: list[dict[str, Any]] = []
    if args.equal_compute and {"gpg", "ppo"} <= set(args.algos) and not args.study and "interrupted" not in failures:
        timed = plan_equal_compute(specs, out)
        timed_todo = [] if args.report_only else [spec | {"git": git} for spec in to_run(timed)]
        if timed_todo:
            print(f"equal compute: {len(timed_todo)} of {len(timed)} runs to do (GPG for PPO's median CPU seconds)")
        failures += execute(timed_todo, len(timed), args)
        if args.report_only:  # what the folder holds for GPG's runs, whatever its budget (earlier runs: wall-clock)
            found = [out / "runs/gpg-equal-compute" / s["env_id"] / f"seed{s['seed']}" for s in specs if s["algo"] == "gpg"]
            equal = [json.loads((run / "result.json").read_text()) for run in found if (run / "result.json").exists()]
        else:
            equal = [result for spec in timed if (result := finished_result(spec)) is not None]
    if "interrupted" in failures:
        return 130
    import bench_report

    if args.study:
        study = Path(args.study)
        whole = parse_args(["--study", args.study])  # the report shows every variant, whichever this sweep ran
        every = plan_runs(whole, whole_tasks := resolve_tasks(whole), out)
        found = {(s["variant"], s["env_id"], s["seed"]): r for s in every if (r := finished_result(s)) is not None}
        files = bench_report.study_report(study, whole.variants, {t.env_id: t for t in whole_tasks}, found)
        for name, data in files.items():
            write_atomic(study.parent / name, data)
        print(f"report: {study.parent / 'report.md'}")
        return 1 if failures else 0
    if not (results := [result for spec in specs if (result := finished_result(spec)) is not None]):
        return print("no finished runs: no report") or 1
    if (mixed := mixed_code(results)) and not args.allow_mixed_code:
        for algo, codes in mixed.items():
            print(
                f"{algo}'s runs come from {len(codes)} code versions ({', '.join(codes)}): no report. Run the sweep "
                "again to redo the runs of older code, or pass --allow-mixed-code to report them as they are."
            )
        return 1
    command = " ".join(["python", "scripts/benchmark.py", *(a for a in sys.argv[1:] if a != "--report-only")])
    history = json.loads((out / "history.json").read_text()) if (out / "history.json").exists() else {}
    search = bench_report.search_effort(Path(args.search_dir), tasks) if args.search_dir else ()
    reports = bench_report.reports(results, tasks, args.bootstrap_reps, command, equal, history, search)
    for name, data in reports.items():
        write_atomic(out / name, data)
    bench_report.plot_curves(out, results, args.algos, {t.env_id: t.threshold for t in tasks})
    print(f"reports in {out}: {', '.join(reports)}, curves/<env>.png")
    if failures:
        print(f"{len(failures)} run(s) failed; run the same command again to retry them.")
    return 1 if failures else 0


def seed_range(text: str, parser: argparse.ArgumentParser) -> list[int]:
    """``"10-19"`` -> ``[10, ..., 19]``; ``"3,5"`` -> ``[3, 5]``."""
    first, sep, last = text.partition("-")
    with contextlib.suppress(ValueError):
        seeds = list(range(int(first), int(last) + 1)) if sep else [int(s) for s in text.split(",")]
        if seeds:
            return seeds
    parser.error(f"--algo-seeds takes ALGO=FIRST-LAST or ALGO=S1,S2,..., not ...={text}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    Parse the command line (default: ``sys.argv[1:]``); with ``--smoke``, :data:`SMOKE` gives the defaults; with
    ``--study``, the study file its tasks, seeds and variants (``--seeds`` and ``--tasks`` narrow them).
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--tasks", nargs="+", help=f"Gymnasium ids (default: {' '.join(DEFAULT_TASKS)})")
    add("--seeds", nargs="+", type=int, help="seeds (default: 0 1 2 3 4)")
    add("--algo-seeds", action="append", metavar="ALGO=FIRST-LAST", help="an algorithm's own seeds instead; repeatable")
    add("--algos", nargs="+", choices=ALGOS, default=list(ALGOS), help="algorithms (default: gpg ppo)")
    add("--conf", action="append", metavar="ALGO[:ENV]=FILE", help="ALGO's rl-zoo3 config file (for ENV only); repeatable")
    add("--study", help="a study file (YAML): its variants, tasks and seeds; the report goes beside it")
    add("--variants", nargs="+", help="with --study: these variants only")
    add("--n-timesteps", type=int, help="env-step budget of every task (default: rl-zoo3's PPO budget)")
    add("--budget", action="append", metavar="ENV=STEPS", help="env-step budget of one task; repeatable")
    add("--eval-freq", type=int, help="env steps between evaluations (default: budget / 20)")
    add("--eval-episodes", type=int, default=20, help="episodes of the final evaluation (default: 20)")
    add("--curve-episodes", type=int, default=10, help="episodes of each periodic evaluation (default: 10)")
    add("--out", default="benchmarks/gpg_vs_ppo", help="output folder (default: %(default)s; --smoke: benchmarks/smoke)")
    add("--n-jobs", type=int, default=1, help="CPUs of the Ray instance started on this machine: runs at once (default: 1)")
    add("--address", help="join this running Ray cluster instead (auto, HOST:PORT or ray://HOST:PORT)")
    add("--max-retries", type=int, default=3, help="reruns of a run whose worker or node dies (default: 3)")
    add("--smoke", action="store_true", help="tiny budget, seed 0, CartPole-v1 only")
    add("--vec-env", choices=("dummy", "subproc"), default="dummy", help="VecEnv of the runs")
    add("--device", default="cpu", help="torch device (default: cpu)")
    add("--torch-threads", type=int, default=1, help="torch threads per run (default: 1)")
    add("--bootstrap-reps", type=int, default=2000, help="bootstrap resamples of the aggregates")
    add("--search-dir", help="report the runs and Optuna trials under this folder on seeds >= 100 as each side's search")
    add("--report-only", action="store_true", help="rewrite the reports from the finished runs, run nothing")
    add("--equal-compute", action="store_true", help="then train GPG again for PPO's median training CPU seconds per task")
    add("--allow-mixed-code", action="store_true", help="keep finished runs of other code versions and report them together")
    add("--worker", help=argparse.SUPPRESS)
    if (args := parser.parse_args(argv)).smoke:
        parser.set_defaults(**SMOKE, out="benchmarks/smoke")
        args = parser.parse_args(argv)
    args.variants = load_study(Path(args.study), args.variants) if args.study else None
    if args.study:
        study = yaml.safe_load(Path(args.study).read_text())
        if unknown := sorted(set(args.tasks or []) - set(study["tasks"])):
            parser.error(f"--tasks {unknown[0]}: not a task of {args.study} ({', '.join(study['tasks'])})")
        for variant in args.variants:  # --seeds and --tasks narrow the study's
            variant["seeds"] = [s for s in variant["seeds"] if args.seeds is None or s in args.seeds]
            variant["tasks"] = [t for t in variant["tasks"] if args.tasks is None or t in args.tasks]
        args.tasks = [t for t in study["tasks"] if any(t in v["tasks"] and v["seeds"] for v in args.variants)]
        if not args.tasks:
            parser.error(f"no run of {args.study} is left with these --variants, --tasks and --seeds")
        args.budget = [*(args.budget or []), *(f"{t}={b}" for t, b in study["tasks"].items() if b and t in args.tasks)]
        args.algos, args.random_scores = sorted({v["algo"] for v in args.variants}), study.get("random_scores")
    args.tasks, args.seeds = args.tasks or list(DEFAULT_TASKS), args.seeds or [0, 1, 2, 3, 4]
    args.conf = parse_pairs(args.conf, "--conf", str)
    args.algo_seeds = {a: seed_range(text, parser) for a, text in parse_pairs(args.algo_seeds, "--algo-seeds", str).items()}
    algos, positive = ", ".join(ALGOS), ("n_jobs", "eval_episodes", "curve_episodes", "torch_threads", "bootstrap_reps")
    if bad := sorted(set(args.algo_seeds) - set(ALGOS)):
        parser.error(f"--algo-seeds {bad[0]}=...: ALGO must be one of {algos}")
    if bad := [f"{n}={p}" for n, p in args.conf.items() if n.partition(":")[0] not in ALGOS or not Path(p).is_file()]:
        parser.error(f"--conf {bad[0]}: ALGO must be one of {algos} and FILE an existing file")
    if bad := sorted({name.partition(":")[2] for name in args.conf} - {"", *args.tasks}):
        parser.error(f"--conf names {bad[0]}, which is not among --tasks")
    if bad := [name for name in positive if vars(args)[name] < 1]:
        parser.error(f"--{bad[0].replace('_', '-')} must be >= 1")
    if args.equal_compute and (args.vec_env == "subproc" or args.device != "cpu" or args.study):
        parser.error(
            "--equal-compute counts the training process's CPU time: it takes neither --vec-env subproc (env "
            "processes escape it), nor a GPU --device, nor --study (it compares GPG with PPO per task)"
        )
    return args


if __name__ == "__main__":  # the sweep, or one run (--worker)
    args = parse_args()
    sys.exit(sweep(args) if args.worker is None else run_worker(Path(args.worker)) or 0)
