"""
GPG against SB3 PPO on CartPole-v1: same seeds, same env-step budget, one run.

PPO uses rl-zoo3's tuned CartPole-v1 hyperparameters (read from the installed rl_zoo3 package),
GPG the CartPole-v1 entry of this project's ``hyperparams/gpg.yml``. For each algorithm and seed
the script trains, then evaluates the deterministic policy on fresh episodes, and prints the
evaluation return, env steps, wall-clock, steps per second and parameter count.

Usage::

    python scripts/compare_cartpole.py --seeds 0 1 2 --out benchmarks/compare_cartpole.json
"""

import argparse
import importlib
import json
import os
import pathlib
import platform
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_gpg import GPG

ENV_ID = "CartPole-v1"
REPO = pathlib.Path(__file__).resolve().parent.parent


def linear(initial: float):
    """Linear schedule from ``initial`` to 0, as rl-zoo3's ``lin_<value>``."""

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial

    return schedule


def zoo_entry(path: pathlib.Path, env_id: str) -> dict[str, Any]:
    """Hyperparameters of ``env_id`` in an rl-zoo3 YAML file, with ``lin_`` schedules converted."""
    with open(path) as file:
        entry = dict(yaml.safe_load(file)[env_id])
    for key, value in list(entry.items()):
        if isinstance(value, str) and value.startswith("lin_"):
            entry[key] = linear(float(value[4:]))
    return entry


def run(algo: str, seed: int, n_timesteps: int | None, eval_episodes: int) -> dict[str, Any]:
    if algo == "ppo":
        import rl_zoo3

        hyperparams = zoo_entry(pathlib.Path(rl_zoo3.__file__).parent / "hyperparams" / "ppo.yml", ENV_ID)
        cls: Any = PPO
    else:
        hyperparams = zoo_entry(REPO / "hyperparams" / "gpg.yml", ENV_ID)
        cls = GPG
    budget = int(n_timesteps or hyperparams.pop("n_timesteps"))
    hyperparams.pop("n_timesteps", None)
    n_envs = int(hyperparams.pop("n_envs", 1))
    policy = hyperparams.pop("policy", "MlpPolicy")
    if hyperparams.pop("normalize", False):
        raise ValueError("this script does not handle normalize: true")
    wrapper = hyperparams.pop("env_wrapper", None)
    if isinstance(wrapper, str):
        module_name, name = wrapper.rsplit(".", 1)
        wrapper = getattr(importlib.import_module(module_name), name)
    if isinstance(hyperparams.get("policy_kwargs"), str):
        # rl-zoo3 writes policy_kwargs as a Python expression, e.g. "dict(net_arch=[64, 64])"
        hyperparams["policy_kwargs"] = eval(hyperparams["policy_kwargs"], {"dict": dict, "nn": th.nn})
    env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed, wrapper_class=wrapper)
    model = cls(policy, env, seed=seed, device="cpu", **hyperparams)
    start = time.perf_counter()
    model.learn(budget)
    wall = time.perf_counter() - start
    eval_env = Monitor(gym.make(ENV_ID))
    eval_env.reset(seed=10_000 + seed)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True)
    return {
        "algo": algo,
        "seed": seed,
        "eval_mean": float(mean),
        "eval_std": float(std),
        "env_steps": int(model.num_timesteps),
        "wall_s": wall,
        "steps_per_s": model.num_timesteps / wall,
        "params": sum(p.numel() for p in model.policy.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-timesteps", type=int, default=None, help="budget (default: rl-zoo3's PPO budget, 1e5)")
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--out", type=str, default=None, help="write the per-seed results as JSON here")
    args = parser.parse_args()
    th.set_num_threads(1)

    results = [run(algo, seed, args.n_timesteps, args.eval_episodes) for seed in args.seeds for algo in ("gpg", "ppo")]
    header = f"{'algo':5} {'seed':>4} {'eval return':>16} {'env steps':>10} {'wall (s)':>9} {'steps/s':>8} {'params':>7}"
    print(header)
    for r in results:
        print(
            f"{r['algo']:5} {r['seed']:>4} {r['eval_mean']:>8.1f} +/- {r['eval_std']:<5.1f} {r['env_steps']:>10} "
            f"{r['wall_s']:>9.1f} {r['steps_per_s']:>8.0f} {r['params']:>7}"
        )
    for algo in ("gpg", "ppo"):
        rows = [r for r in results if r["algo"] == algo]
        print(
            f"{algo:5} mean over {len(rows)} seeds: eval {np.mean([r['eval_mean'] for r in rows]):.1f}, "
            f"wall {np.mean([r['wall_s'] for r in rows]):.1f} s, {np.mean([r['steps_per_s'] for r in rows]):.0f} steps/s"
        )
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {th.__version__}, 1 torch thread"
    print(f"machine: {machine}")
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w") as file:
            json.dump({"machine": machine, "args": vars(args), "results": results}, file, indent=2)


if __name__ == "__main__":
    main()
