"""
Resident memory of a long GPG run: RSS after every rollout, against the size of the rollout buffer.

Trains GPG on LunarLander-v3 for ``--rollouts`` rollouts and records, after each, the process's
resident set size (from /proc/self/statm) and the bytes held by the buffer's arrays. A leak shows
as RSS growing with the rollout count beyond what the largest buffer needs.

Usage (the second line measures SB3's PPO the same way, for reference)::

    python scripts/memory_longrun.py --rollouts 200 --out benchmarks/memory_lunarlander.txt
    python scripts/memory_longrun.py --algo ppo --rollouts 183 --out benchmarks/memory_lunarlander_ppo.txt
"""

import argparse
import os
import pathlib
import platform
import time

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_gpg import GPG, GroupRolloutBuffer


def rss_mib() -> float:
    """Resident set size of this process in MiB."""
    with open("/proc/self/statm") as file:
        pages = int(file.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def buffer_mib(buffer) -> float:
    """Bytes held by the buffer's per-step arrays, in MiB."""
    if not isinstance(buffer, GroupRolloutBuffer):  # SB3's RolloutBuffer: fixed arrays
        names = ("observations", "actions", "rewards", "returns", "advantages", "values", "log_probs", "episode_starts")
        return sum(getattr(buffer, name).nbytes for name in names) / 2**20
    total = 0
    for name in ("actions", "log_probs", "rewards", "episode_ids", "group_ids", "timesteps", "bin_ids", "returns"):
        total += getattr(buffer, name).nbytes
    total += buffer.baselines.nbytes + buffer.advantages.nbytes
    obs = buffer.observations
    total += sum(v.nbytes for v in obs.values()) if isinstance(obs, dict) else obs.nbytes
    return total / 2**20


class MemoryLog(BaseCallback):
    """Stops after ``max_rollouts`` rollouts, recording memory after each."""

    def __init__(self, max_rollouts: int) -> None:
        super().__init__()
        self.max_rollouts = max_rollouts
        self.rows: list[tuple[int, int, int, float, float]] = []
        self.stop = False

    def _on_step(self) -> bool:
        return not self.stop

    def _on_rollout_end(self) -> None:
        buf = self.model.rollout_buffer
        self.rows.append((len(self.rows) + 1, self.model.num_timesteps, buf.size(), rss_mib(), buffer_mib(buf)))
        self.stop = len(self.rows) >= self.max_rollouts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=200)
    parser.add_argument("--algo", choices=["gpg", "ppo"], default="gpg", help="ppo: the same measurement for SB3's PPO")
    parser.add_argument("--out", type=str, default=None)
    args = parser.parse_args()
    th.set_num_threads(1)
    env = make_vec_env("LunarLander-v3", n_envs=4, seed=0)
    if args.algo == "gpg":
        model = GPG("MlpPolicy", env, group_size=4, n_groups=2, batch_size=256, n_epochs=4, seed=0, device="cpu")
    else:
        model = PPO("MlpPolicy", env, n_steps=1024, batch_size=256, n_epochs=4, seed=0, device="cpu")
    log = MemoryLog(args.rollouts)
    start = time.perf_counter()
    model.learn(10**9, callback=log)
    wall = time.perf_counter() - start
    rows = np.array(log.rows)
    lines = [f"{'rollout':>7} {'env steps':>9} {'buffer steps':>12} {'RSS MiB':>8} {'buffer MiB':>10}"]
    for r in log.rows:
        if r[0] in (1, 2, 5, 10) or r[0] % 20 == 0:
            lines.append(f"{r[0]:>7} {r[1]:>9} {r[2]:>12} {r[3]:>8.1f} {r[4]:>10.3f}")
    tenth = rows[9, 3]
    lines += [
        f"RSS after rollout 10: {tenth:.1f} MiB; after rollout {len(rows)}: {rows[-1, 3]:.1f} MiB; "
        f"max: {rows[:, 3].max():.1f} MiB; growth from rollout 10: {rows[-1, 3] - tenth:+.1f} MiB",
        f"largest buffer: {rows[:, 4].max():.3f} MiB ({int(rows[:, 2].max())} steps)",
        f"{args.algo}: {len(rows)} rollouts, {int(rows[-1, 1])} env steps in {wall:.0f} s "
        f"on {platform.machine()}, {os.cpu_count()} CPUs",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
