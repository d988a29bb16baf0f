"""Gymnasium wrapper that lets GPG start the episodes of a group from the same initial state."""

import dataclasses
import hashlib
import time
from collections import deque
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.core import ActType, ObsType
from stable_baselines3.common.monitor import Monitor

from sb3_gpg.snapshots import EnvSnapshot, restore_snapshot, snapshot_method, take_snapshot


def observation_digest(obs: Any) -> str:
    """
    A short digest of an observation (array, scalar or dict of those), equal for equal observations.

    :param obs: Observation.
    :return: Hex digest.
    """
    digest = hashlib.blake2b(digest_size=16)
    for key in sorted(obs) if isinstance(obs, dict) else [None]:
        value = np.ascontiguousarray(obs if key is None else obs[key])
        digest.update(f"{key}:{value.dtype}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


class GroupResetWrapper(gym.Wrapper[ObsType, ActType, ObsType, ActType]):
    """
    Seeds the next resets of an environment ahead of time, and optionally caps episode length.

    SB3's vectorised environments reset a finished sub-environment by themselves, without a seed,
    inside ``step()``. GPG needs that reset to use its group's seed, so that the episodes of a group
    start from the same state, and it needs the reset to go through the ``VecEnv`` and its wrappers
    (``VecNormalize``, ``VecFrameStack``, ``VecTransposeImage``) as any other reset. This wrapper,
    placed inside each sub-environment, holds a queue of "armed" seeds: the next reset without an
    explicit seed pops one. :class:`sb3_gpg.rollout.GroupRollout` arms it through ``VecEnv.env_method``.
    While asked to, it also records a digest of the first observation of each armed reset, seen below
    any ``VecEnv`` wrapper, so that GPG can check that a seed gives one start state.

    ``GPG`` adds this wrapper by itself when it builds the environment (env id or ``gym.Env``) or
    receives a ``DummyVecEnv``; a ``SubprocVecEnv`` must be built with it, through
    :func:`~sb3_gpg.add_group_reset`, for example
    ``make_vec_env(env_id, n_envs, vec_env_cls=SubprocVecEnv, wrapper_class=sb3_gpg.add_group_reset)``.
    It belongs at the bottom of the wrapper chain, right above the base environment, where
    :func:`~sb3_gpg.add_group_reset` puts it: placed on top of SB3's ``Monitor`` (as
    ``wrapper_class=GroupResetWrapper`` would), the episodes it truncates at ``max_episode_steps``
    end unseen by ``Monitor``, and are missing from ``rollout/ep_rew_mean`` and the monitor files.

    For branched groups (:mod:`sb3_gpg.branching`) it also saves the env's state
    (:meth:`gpg_snapshot`, :mod:`sb3_gpg.snapshots`), restores a snapshot in an armed reset
    (:meth:`gpg_arm_restore`), truncates an armed start after a horizon and takes a snapshot at an
    armed step. A restored episode still ends at the time limit of the wrappers above, counted from
    its true start.

    :param env: Environment to wrap.
    :param time_limit: The time limit of the wrappers above (``TimeLimit``, which counts its steps from
        a restore); :func:`~sb3_gpg.add_group_reset` finds it.
    :param monitor: SB3's ``Monitor`` above, whose file gets the trunks of branched groups instead of
        the members' segments; :func:`~sb3_gpg.add_group_reset` finds it.
    """

    def __init__(self, env: gym.Env, time_limit: int | None = None, monitor: Monitor | None = None) -> None:
        super().__init__(env)
        self._armed: deque[_ArmedStart] = deque()
        self._gpg_max_episode_steps: int | None = None
        self._elapsed_steps = 0
        self._start_digests: list[tuple[int, str]] | None = None
        # Wrappers between this one and the base env keep state a snapshot of the base env would miss: replay them.
        self._snapshot_method = "replay" if isinstance(env, gym.Wrapper) else snapshot_method(env)
        self._time_limit = time_limit
        self._episode_seed: int | None = None
        self._last_obs: Any = None
        self._actions: list[Any] = []
        self._start = _ArmedStart()
        self._segment_steps = 0
        self._taken: EnvSnapshot | None = None
        #: Steps replayed to restore snapshots (``"replay"`` method), since the last :meth:`gpg_take_replayed_steps`.
        self._replayed_steps = 0
        self._monitor = monitor
        #: The monitor's file writer while branch segments run (see _mute_monitor).
        self._muted_writer: Any = None

    def gpg_arm_reset(self, seed: int | None, horizon: int | None = None, snapshot_at: int | None = None) -> None:
        """
        Queue a seed for the next reset that is called without an explicit seed.

        :param seed: Reset seed (``None``: an unseeded reset).
        :param horizon: Truncate the episode after this many steps (``None``: run it to its end).
        :param snapshot_at: Take a snapshot after this many steps, for :meth:`gpg_take_snapshot` (if the episode goes on).
        """
        self._armed.append(_ArmedStart(None if seed is None else int(seed), None, horizon, snapshot_at))

    def gpg_arm_restore(self, snapshot: EnvSnapshot, horizon: int | None = None, snapshot_at: int | None = None) -> None:
        """
        Queue a snapshot for the next reset that is called without an explicit seed: that reset restores it.

        :param snapshot: What :meth:`gpg_snapshot` returned, in this env or another of the same task.
        :param horizon: Truncate the restored episode after this many steps (``None``: run it to its end).
        :param snapshot_at: Take a snapshot after this many steps, for :meth:`gpg_take_snapshot` (if the episode goes on).
        """
        self._armed.append(_ArmedStart(None, snapshot, horizon, snapshot_at))

    def gpg_clear(self) -> None:
        """Drop every armed seed and snapshot."""
        self._armed.clear()

    def gpg_snapshot_method(self) -> str:
        """
        :return: How this env's state is saved and restored (:func:`sb3_gpg.snapshots.snapshot_method`).
        """
        return self._snapshot_method

    def gpg_snapshot(self) -> EnvSnapshot:
        """
        Save the env's state at the current step of its episode (exactly; see :mod:`sb3_gpg.snapshots`).

        :return: A picklable snapshot, to arm in this env or another with :meth:`gpg_arm_restore`.
        """
        return take_snapshot(
            self.env, self._snapshot_method, self._elapsed_steps, self._episode_seed, self._last_obs, self._actions
        )

    def gpg_take_snapshot(self) -> EnvSnapshot | None:
        """
        :return: The snapshot an armed ``snapshot_at`` took (``None`` if the episode ended first), once.
        """
        taken, self._taken = self._taken, None
        return taken

    def gpg_record_episode(self, reward: float, length: int) -> None:
        """
        Write a whole episode that branched segments played (a trunk) to the monitor file of SB3's ``Monitor`` above.

        :param reward: The episode's return (the env's own rewards, undiscounted).
        :param length: Its length in steps.
        """
        if self._muted_writer is not None and self._monitor is not None:
            elapsed = round(time.time() - self._monitor.t_start, 6)
            self._muted_writer.write_row({"r": round(reward, 6), "l": int(length), "t": elapsed})

    def _mute_monitor(self, mute: bool) -> None:
        # SB3's Monitor writes every episode it sees to its file, and a branch segment (a member that starts at a
        # snapshot, or runs a horizon) is no episode of the task: the file gets the trunks instead (gpg_record_episode).
        # Monitor has no switch for it; its public `results_writer` is swapped out while segments run, here only.
        monitor = self._monitor
        if monitor is None:
            return
        if mute and monitor.results_writer is not None:
            self._muted_writer, monitor.results_writer = monitor.results_writer, None
        elif not mute and self._muted_writer is not None:
            monitor.results_writer, self._muted_writer = self._muted_writer, None

    def gpg_take_replayed_steps(self) -> int:
        """
        :return: Steps replayed to restore snapshots since the last call (then reset to 0).
        """
        replayed, self._replayed_steps = self._replayed_steps, 0
        return replayed

    def gpg_record_starts(self) -> None:
        """Record the seed and first-observation digest of every armed reset, until :meth:`gpg_take_starts`."""
        self._start_digests = []

    def gpg_take_starts(self) -> list[tuple[int, str]]:
        """
        Stop recording and return what was recorded.

        :return: ``(seed, digest of the first observation)`` of each armed reset since :meth:`gpg_record_starts`.
        """
        starts, self._start_digests = self._start_digests or [], None
        return starts

    def gpg_set_max_episode_steps(self, max_episode_steps: int | None) -> None:
        """
        Truncate episodes after ``max_episode_steps`` steps (``None``: never).

        :param max_episode_steps: Step limit, or ``None``.
        """
        self._gpg_max_episode_steps = max_episode_steps

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[ObsType, dict[str, Any]]:
        """
        Reset, with the oldest armed seed or snapshot when no explicit seed is given.

        :param seed: Explicit seed; wins over armed seeds, which are then kept for later resets.
        :param options: Reset options, passed through.
        :return: First observation and info dict.
        """
        armed = seed is None and bool(self._armed)
        self._start = self._armed.popleft() if armed else _ArmedStart(seed)
        self._segment_steps = 0
        self._mute_monitor(self._start.horizon is not None)
        snapshot = self._start.snapshot
        if snapshot is not None:
            obs, replayed = restore_snapshot(self.env, snapshot, options)
            self._replayed_steps += replayed
            self._elapsed_steps, self._episode_seed = snapshot.step, snapshot.seed
            self._actions = list(snapshot.state) if snapshot.method == "replay" else []
            self._last_obs = obs
            return obs, {}
        self._elapsed_steps, self._episode_seed, self._actions = 0, self._start.seed, []
        obs, info = self.env.reset(seed=self._start.seed, options=options)
        self._last_obs = obs
        if armed and self._start_digests is not None and self._start.seed is not None:
            self._start_digests.append((int(self._start.seed), observation_digest(obs)))  # type: ignore[arg-type]
        return obs, info

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """
        Step the environment, truncating at the GPG step limit or the armed horizon if one is set.

        :param action: Action.
        :return: Observation, reward, terminated, truncated, info.
        """
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._elapsed_steps += 1
        self._segment_steps += 1
        self._last_obs = obs
        if self._snapshot_method == "replay":
            self._actions.append(action.copy() if isinstance(action, np.ndarray) else action)
        # A restored episode ends where the original would have: at the env's time limit, counted from its true start
        # (a TimeLimit above counts from the restore; for an episode from a reset both end it at the same step).
        if any(end is not None and self._elapsed_steps >= end for end in (self._gpg_max_episode_steps, self._time_limit)):
            truncated = True
        if self._segment_steps == self._start.snapshot_at and not (terminated or truncated):
            self._taken = self.gpg_snapshot()
        if self._start.horizon is not None and self._segment_steps >= self._start.horizon:
            truncated = True
        return obs, reward, terminated, truncated, info


@dataclasses.dataclass(frozen=True)
class _ArmedStart:
    """How the next episode starts: a seed or a snapshot, with an optional horizon and snapshot step."""

    seed: int | None = None
    snapshot: EnvSnapshot | None = None
    horizon: int | None = None
    snapshot_at: int | None = None


def _monitor_in(env: gym.Env) -> Monitor | None:
    # The SB3 Monitor nearest to the base env in a wrapper chain, if any.
    found = None
    while isinstance(env, gym.Wrapper):
        if isinstance(env, Monitor):
            found = env
        env = env.env
    return found


def add_group_reset(env: gym.Env) -> gym.Env:
    """
    Insert a :class:`GroupResetWrapper` at the bottom of an environment's wrapper chain.

    Placed right above the base environment, the wrapper's step limit is seen by every outer
    wrapper (SB3's ``Monitor`` records those episodes) and its seeded resets are reached by any
    reset called from the top. An environment that already has the wrapper is returned unchanged.
    Use it as ``wrapper_class`` of ``make_vec_env`` for a ``SubprocVecEnv``.

    :param env: Environment, possibly wrapped.
    :return: The environment to use in place of ``env`` (the same object unless ``env`` is unwrapped).
    """
    if not isinstance(env, gym.Wrapper):
        return GroupResetWrapper(env)
    inner: gym.Env = env
    while isinstance(inner, gym.Wrapper):
        if isinstance(inner, GroupResetWrapper):
            return env
        if not isinstance(inner.env, gym.Wrapper):
            # `env` is the public attribute through which gymnasium wrappers hold what they wrap.
            time_limit = None if env.spec is None else env.spec.max_episode_steps
            inner.env = GroupResetWrapper(inner.env, time_limit, _monitor_in(env))
            return env
        inner = inner.env
    return env
