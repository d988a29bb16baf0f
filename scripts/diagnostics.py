"""
What GPG's rollouts look like while it learns: one JSON line per rollout, and a summary over training.

:class:`RolloutDiagnostics` (attached by ``scripts/benchmark.py --diagnostics``) writes, for every rollout of a GPG
run, ``diagnostics.jsonl`` into the run's folder: the episodes' lengths (and how many reached the longest), their
returns in the env's own rewards (mean, and the spread within the groups, which is all the group baseline can
learn from), the mean absolute advantage by time window, and, for envs whose ``info`` splits the reward (MuJoCo's
``reward_survive``, ``reward_forward``...), each part's share, plus the mean ``x_velocity``. The update's
statistics of the *previous* rollout (``train/approx_kl``, ``train/clip_fraction``, ``train/std``) come along.

Usage (a summary table of a run, every ``--every``-th rollout)::

    python scripts/diagnostics.py benchmarks/locomotion/<variant>/runs/gpg/Hopper-v5/seed100 [--every 10]
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from stable_baselines3.common.callbacks import BaseCallback

#: Time windows of the advantage statistics: ``[start, end)`` steps within the episode.
WINDOWS = ((0, 50), (50, 200), (200, 500), (500, 1000), (1000, 10**9))
#: Keys of ``info`` that split the reward into parts (MuJoCo's locomotion envs).
REWARD_PARTS = ("reward_survive", "reward_forward", "reward_ctrl", "reward_contact")
TRAIN_KEYS = ("train/approx_kl", "train/clip_fraction", "train/std", "train/entropy_loss")


class RolloutDiagnostics(BaseCallback):
    """
    Per-rollout statistics of a GPG run, one JSON line each in ``path``.

    :param path: the JSON-lines file (appended to)
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._reset()

    def _reset(self) -> None:
        self.raw_returns: dict[int, float] = defaultdict(float)
        self.parts: dict[str, float] = defaultdict(float)
        self.velocity: list[float] = []

    def _on_rollout_start(self) -> None:
        self._reset()

    def _on_step(self) -> bool:
        rollout, infos = self.locals.get("rollout"), self.locals.get("infos", [])
        raw = self.locals.get("raw_rewards")
        rewards = self.locals["rewards"] if raw is None else raw
        if rollout is None:  # not a GPG rollout
            return True
        for env_index, episode in enumerate(rollout.episodes):
            if episode < 0:
                continue
            self.raw_returns[int(episode)] += float(rewards[env_index])
            info = infos[env_index]
            for part in REWARD_PARTS:
                if part in info:
                    self.parts[part] += float(info[part])
            if "x_velocity" in info:
                self.velocity.append(float(info["x_velocity"]))
        return True

    def _on_rollout_end(self) -> None:
        buffer, rollout = self.model.rollout_buffer, self.locals["rollout"]
        episode_ids, timesteps = buffer.episode_ids, buffer.timesteps
        lengths = np.bincount(episode_ids)
        returns = np.array([self.raw_returns[e] for e in range(len(lengths))])
        groups = rollout.episode_groups[: len(lengths)]
        spread = [float(np.std(returns[groups == g])) for g in np.unique(groups)]
        record: dict[str, Any] = {
            "timesteps": int(self.model.num_timesteps),
            "episodes": len(lengths),
            "steps": int(buffer.size()),
            "length_mean": float(lengths.mean()),
            "length_min": int(lengths.min()),
            "length_max": int(lengths.max()),
            "at_longest": float(np.mean(lengths == lengths.max())),
            "return_mean": float(returns.mean()),
            "return_max": float(returns.max()),
            "group_spread": float(np.mean(spread)),
            "tied": bool(getattr(buffer, "tied", False)),
        }
        for start, end in WINDOWS:
            inside = (timesteps >= start) & (timesteps < end)
            if inside.any():
                record[f"abs_adv_{start}_{end}"] = float(np.mean(np.abs(buffer.advantages[inside])))
        total = sum(abs(v) for v in self.parts.values())
        record.update({f"share_{part}": value / total for part, value in self.parts.items() if total > 0})
        if self.velocity:
            record["x_velocity"] = float(np.mean(self.velocity))
        logged = self.model.logger.name_to_value
        record.update({key: float(logged[key]) for key in TRAIN_KEYS if key in logged})
        with open(self.path, "a") as file:
            file.write(json.dumps(record) + "\n")


def summary(run_dir: Path, every: int = 10) -> pd.DataFrame:
    """The run's ``diagnostics.jsonl``, every ``every``-th rollout and the last one, as a table."""
    frame = pd.read_json(run_dir / "diagnostics.jsonl", lines=True)
    keep = sorted(set(range(0, len(frame), every)) | {len(frame) - 1})
    return frame.iloc[keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding a diagnostics.jsonl")
    parser.add_argument("--every", type=int, default=10, help="one rollout in so many (default: 10)")
    args = parser.parse_args()
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.float_format", "{:.3g}".format):
        for run in args.runs:
            print(f"== {run}")
            print(summary(run, args.every).to_string(index=False))


if __name__ == "__main__":
    main()
