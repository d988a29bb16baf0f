"""
One GPG training probe with given keyword arguments: an evaluation curve and a final return, as one JSON line.

Hand tuning (issue 9) runs many of these on seeds the benchmark never uses (100 and up); the
settings that win then go into ``hyperparams/gpg.yml`` and through ``scripts/benchmark.py``.
The env is built as rl-zoo3 builds it for GPG's entries (``make_vec_env`` with ``n_envs`` envs,
``VecNormalize`` with the model's gamma when ``--normalize``), the evaluation env is a separate
seeded env whose normalisation statistics are synced before each evaluation (deterministic
actions, rewards not normalised), and the evaluation time is kept out of the training seconds.

Usage::

    python scripts/probe.py --env HalfCheetah-v5 --seed 100 --tag mes200 \\
        --kw "dict(group_size=4, n_groups=2, gamma=0.99, max_episode_steps=200, learning_rate=lin(3e-4))" \\
        --out benchmarks/probes/halfcheetah.jsonl

``--kw`` is a Python expression of GPG's keyword arguments; ``nn`` (``torch.nn``) and ``lin(x)``
(a learning rate decaying linearly from ``x`` to 0) are available in it.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization
from torch import nn

from sb3_gpg import GPG


class Curve(BaseCallback):
    """
    Evaluate every ``every`` env steps; record (steps, mean return, training seconds, policy std).

    :param eval_env: Evaluation env
    :param every: Env steps between evaluations
    :param n_episodes: Episodes per evaluation
    """

    #: logger keys of the previous update, read at each rollout's end; their mean and max over an evaluation
    #: period are recorded with each evaluation (issue 9: what precedes a collapse)
    DIAGNOSTICS = ("train/approx_kl", "train/clip_fraction", "train/entropy_loss", "gpg/advantage_std")

    def __init__(self, eval_env: VecEnv, every: int, n_episodes: int) -> None:
        super().__init__()
        self.eval_env, self.every, self.n_episodes = eval_env, every, n_episodes
        self.next, self.start, self.eval_seconds = every, time.perf_counter(), 0.0
        self.points: list[tuple[int, float, float, float | None]] = []
        self.window: dict[str, list[float]] = {key: [] for key in self.DIAGNOSTICS}
        self.diagnostics: list[dict[str, float]] = []

    def train_seconds(self) -> float:
        return time.perf_counter() - self.start - self.eval_seconds

    def evaluate(self, n_episodes: int) -> float:
        started = time.perf_counter()
        if isinstance(self.model.get_env(), VecNormalize):
            sync_envs_normalization(self.model.get_env(), self.eval_env)
        mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=n_episodes)
        self.eval_seconds += time.perf_counter() - started
        return float(mean)

    def _on_rollout_end(self) -> None:
        for key in self.DIAGNOSTICS:
            value = self.logger.name_to_value.get(key)
            if value is not None and np.isfinite(value):
                self.window[key].append(float(value))

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next:
            self.next += self.every
            mean = self.evaluate(self.n_episodes)
            log_std = getattr(self.model.policy, "log_std", None)
            std = None if log_std is None else round(float(th.exp(log_std.detach()).mean()), 4)
            self.points.append((int(self.num_timesteps), round(mean, 1), round(self.train_seconds(), 1), std))
            summary = {"steps": int(self.num_timesteps)}
            for key, values in self.window.items():
                if values:
                    name = key.split("/")[1]
                    summary |= {f"{name}_mean": round(float(np.mean(values)), 5), f"{name}_max": round(max(values), 5)}
                values.clear()
            self.diagnostics.append(summary)
            print(self.points[-1], summary, flush=True)
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--normalize", type=int, default=1, help="VecNormalize observations and rewards (1) or not (0)")
    parser.add_argument("--steps", type=float, default=1e6)
    parser.add_argument("--eval-every", type=float, default=1e5)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--final-episodes", type=int, default=10)
    parser.add_argument("--kw", default="dict()", help="GPG keyword arguments, as a Python expression")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", type=Path, required=True, help="JSON-lines file the result is appended to")
    args = parser.parse_args()
    th.set_num_threads(1)
    kwargs = eval(args.kw, {"nn": nn, "lin": lambda x: LinearSchedule(x, 0.0, 1.0), "dict": dict})

    # SB3's make_vec_env renders to rgb_array unless told otherwise; gymnasium's LunarLanders then add engine
    # particles (Box2D bodies that expire only when a frame is drawn) and slow down 5-10x. rl-zoo3 builds its envs
    # without a render mode: so does the probe.
    no_render = {"render_mode": None}
    env = make_vec_env(args.env, n_envs=args.n_envs, seed=args.seed, env_kwargs=no_render)
    eval_env = make_vec_env(args.env, n_envs=1, seed=args.seed + 1000, env_kwargs=no_render)
    if args.normalize:
        env = VecNormalize(env, gamma=kwargs.get("gamma", 0.99))
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
    model = GPG("MlpPolicy", env, seed=args.seed, **kwargs)
    curve = Curve(eval_env, int(args.eval_every), args.eval_episodes)
    model.learn(int(args.steps), callback=curve)
    train_seconds = curve.train_seconds()
    final = curve.evaluate(args.final_episodes)
    record = {"tag": args.tag, "env": args.env, "seed": args.seed, "n_envs": args.n_envs, "kw": args.kw, "final": final}
    record |= {"curve": curve.points, "diagnostics": curve.diagnostics}
    record |= {"train_s": round(train_seconds, 1), "steps": int(model.num_timesteps)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as file:  # one line per probe, appended in one write
        file.write(json.dumps(record) + "\n")
    print("final", final)


if __name__ == "__main__":
    main()
