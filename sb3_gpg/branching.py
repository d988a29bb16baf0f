"""
Branched groups: groups that start from states the policy visits, not only from resets.

A *chain* walks through an episode. At each of its *branch points* (its first is a seeded reset, each later
one an exact snapshot, :mod:`sb3_gpg.snapshots`) a group of ``group_size`` members starts from that one state
and each member runs ``horizon`` steps (or until the episode ends: termination, or the env's time limit counted
from the episode's true start). Member 0's state after ``interval`` steps is the chain's next branch point, so
member 0's first ``interval`` steps of every group, end to end, are one whole episode of the policy: the chain's
*trunk*, which is what ``rollout/ep_rew_mean`` reports. Every member's first ``interval`` steps are trained on;
the steps after them (``horizon - interval``) only lengthen the Monte Carlo returns of the trained ones, so that
every trained step looks at least ``horizon - interval`` steps ahead. Within a group, the members' returns at the
same step since the branch point give each other's baseline: at the branch point itself all members are in one
state and differ only in their actions.

The members of a group are ordinary episodes of the rollout buffer: a member is one episode id, its group one
group id, its time steps count from the branch point. The estimator and ``train()`` do not know about branching.

Scheduling. Every env holds one armed start at all times (:class:`~sb3_gpg.wrappers.GroupResetWrapper`), which its
``VecEnv`` auto-reset begins when its current segment ends: a member of a group, or, when no member waits, a
one-step *idle* start (an unseeded reset that is not stored). A group is created when an env is idle and no member
waits: from the oldest chain whose next branch point is reached, else from a new chain (a seeded reset). Member 0 of
a group starts before the others, so that the chain's next branch point comes as early as possible, and so that
chains go on rather than new ones start. A rollout creates
``n_groups`` groups and ends when all their members have ended; branch points reached after that are kept for the
next rollout, whose chains go on from them first.
"""

import dataclasses
import importlib
import time
from collections import deque
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecFrameStack

from sb3_gpg.snapshots import EnvSnapshot
from sb3_gpg.wrappers import GroupResetWrapper

_ARM_RESET = GroupResetWrapper.gpg_arm_reset.__name__
_ARM_RESTORE = GroupResetWrapper.gpg_arm_restore.__name__
_CLEAR = GroupResetWrapper.gpg_clear.__name__
_TAKE_SNAPSHOT = GroupResetWrapper.gpg_take_snapshot.__name__
_TAKE_REPLAYED = GroupResetWrapper.gpg_take_replayed_steps.__name__
_RECORD_EPISODE = GroupResetWrapper.gpg_record_episode.__name__


#: Wrappers that keep state of their own above GPG's wrapper, where a snapshot of the env cannot restore it.
_STATEFUL_WRAPPERS = (
    "gymnasium.wrappers.FrameStackObservation",
    "gymnasium.wrappers.TimeAwareObservation",
    "gymnasium.wrappers.NormalizeObservation",
    "gymnasium.wrappers.NormalizeReward",
    "gymnasium.wrappers.DelayObservation",
    "gymnasium.wrappers.AtariPreprocessing",
    "stable_baselines3.common.atari_wrappers.NoopResetEnv",
    "stable_baselines3.common.atari_wrappers.FireResetEnv",
    "stable_baselines3.common.atari_wrappers.EpisodicLifeEnv",
)
_STACK_INSIDE = (
    "stack inside each env, below GPG's wrapper, where a snapshot replays it: for example "
    "make_vec_env(env_id, n_envs, wrapper_class=lambda env: GroupResetWrapper(FrameStackObservation(env, 4)))"
)


def check_restorable(vec_env: VecEnv) -> None:
    """
    Refuse an env whose state a snapshot cannot restore exactly, saying how to build it so that one can.

    A snapshot saves what lies below the :class:`~sb3_gpg.wrappers.GroupResetWrapper` of a sub-environment. What
    keeps state above it is reset, not restored: ``VecFrameStack``'s stacked frames, and gym wrappers such as
    ``FrameStackObservation`` or the Atari wrappers' no-op resets.

    :param vec_env: The training environment, possibly wrapped.
    """
    wrapper: VecEnv = vec_env
    while isinstance(wrapper, VecEnvWrapper):
        if isinstance(wrapper, VecFrameStack) or hasattr(wrapper, "stacked_obs"):
            raise ValueError(
                f"{type(wrapper).__name__} keeps the stacked observations outside the envs, where a snapshot cannot "
                f"restore them, so GPG cannot branch from a state of this env: {_STACK_INSIDE}."
            )
        wrapper = wrapper.venv
    for path in _STATEFUL_WRAPPERS:
        module_name, _, name = path.rpartition(".")
        wrapper_class = getattr(importlib.import_module(module_name), name, None)
        if wrapper_class is not None and any(vec_env.env_is_wrapped(wrapper_class)):
            raise ValueError(
                f"{name} wraps GPG's GroupResetWrapper and keeps state of its own, which a snapshot cannot restore, so "
                f"GPG cannot branch from a state of this env: put it below GPG's wrapper ({_STACK_INSIDE})."
            )


@dataclasses.dataclass
class Chain:
    """A walk through one episode: its trunk's return and length so far, and where it goes on."""

    seed: int
    started: float = dataclasses.field(default_factory=time.time)
    reward: float = 0.0
    length: int = 0
    #: The next branch point (``None``: the chain starts with a reset with ``seed``).
    head: EnvSnapshot | None = None


@dataclasses.dataclass
class _Group:
    chain: Chain
    #: Where the members start: the chain's head when the group was made (``None``: the chain's seeded reset).
    head: EnvSnapshot | None


@dataclasses.dataclass
class _Job:
    group: int
    member: int


class BranchRollout:
    """
    One rollout of branched groups (see the module's docstring), played by the envs of ``env``.

    Same protocol as :class:`~sb3_gpg.rollout.GroupRollout`: :meth:`reset` once, then :meth:`step` after every
    ``VecEnv.step`` until :attr:`done`; :attr:`episodes` tells which member episode each env plays (-1: idle) and
    :attr:`episode_groups` maps each episode to its group.

    :param env: The training environment; every sub-environment holds a ``GroupResetWrapper``.
    :param chains: The chains that go on from earlier rollouts (their ``head`` set), and are continued first.
    :param new_seed: Draws the reset seed of a new chain.
    :param group_size: Members per branch point (>= 2).
    :param n_groups: Groups this rollout creates.
    :param horizon: Steps each member runs from its branch point.
    :param interval: Trunk steps between branch points, ``1 <= interval <= horizon``; steps past it are not trained on.
    """

    def __init__(
        self,
        env: VecEnv,
        chains: list[Chain],
        new_seed: Any,
        group_size: int,
        n_groups: int,
        horizon: int,
        interval: int,
    ) -> None:
        self.env = env
        self.new_seed = new_seed
        self.group_size = group_size
        self.n_groups = n_groups
        self.horizon = horizon
        self.interval = interval
        n_envs = env.num_envs
        #: Chains waiting for a group, with their next branch point (or a reset).
        self.waiting: deque[Chain] = deque(chains)
        self.groups: list[_Group] = []
        self.queue: deque[_Job] = deque()
        #: Job each env is armed with (its next segment), ``None``: an idle step.
        self.armed: list[_Job | None] = [None] * n_envs
        #: Job each env is playing, ``None``: idle.
        self.playing: list[_Job | None] = [None] * n_envs
        self.segment_steps = np.zeros(n_envs, dtype=np.int64)
        #: Episode (member) each env is playing, -1 when idle.
        self.episodes = np.full(n_envs, -1, dtype=np.int64)
        self._episode_groups: list[int] = []
        self.finished_members = 0
        #: Member steps of the rollout, trained on or not.
        self.stored_steps = 0
        self.n_steps = 0
        self.idle_steps = 0
        #: Trunk episodes that ended in this rollout, as SB3's ``info["episode"]``.
        self.episode_infos: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ what the algorithm reads

    @property
    def done(self) -> bool:
        """Whether every member of every group of the rollout has ended."""
        return len(self.groups) >= self.n_groups and self.finished_members >= len(self.groups) * self.group_size

    @property
    def episode_groups(self) -> np.ndarray:
        """Group of each member episode, indexed by episode id."""
        return np.asarray(self._episode_groups, dtype=np.int64)

    @property
    def n_episodes(self) -> int:
        """Member episodes of the rollout."""
        return len(self._episode_groups)

    @property
    def idle_fraction(self) -> float:
        """Fraction of the env steps of the rollout spent on idle steps."""
        return self.idle_steps / max(1, self.n_steps * self.env.num_envs)

    def chains_to_continue(self) -> list[Chain]:
        """
        :return: The chains whose next branch point was reached but not yet branched from: the next rollout's first.
        """
        return [chain for chain in self.waiting if chain.head is not None]

    # ------------------------------------------------------------------ the protocol

    def reset(self) -> np.ndarray:
        """
        Arm every env with a member to start (or an idle step), reset the ``VecEnv``, and arm each env's next segment.

        :return: The first observations, as ``VecEnv.reset`` returns them.
        """
        self.env.env_method(_CLEAR)
        self.env.env_method(_TAKE_REPLAYED)
        for i in range(self.env.num_envs):
            self._arm(i, create=True)
        observations = self.env.reset()
        for i in range(self.env.num_envs):
            self._begin(i)
        return observations  # type: ignore[return-value]

    def step(self, dones: np.ndarray, raw_rewards: np.ndarray) -> None:
        """
        Account for one ``VecEnv.step``: trunk rewards, branch points reached, segments ended and begun.

        :param dones: Which envs ended a segment in this step (they have reset into their armed start).
        :param raw_rewards: The env's own rewards of this step (before any ``VecNormalize`` scaling).
        """
        self.n_steps += 1
        self.segment_steps += 1
        for i in range(self.env.num_envs):
            job = self.playing[i]
            if job is None:
                self.idle_steps += 1
                continue
            self.stored_steps += 1
            group = self.groups[job.group]
            if job.member == 0 and self.segment_steps[i] <= self.interval:
                group.chain.reward += float(raw_rewards[i])
                group.chain.length += 1
                if self.segment_steps[i] == self.interval:
                    self._branch_point_reached(i, group.chain)
                elif dones[i]:
                    self._chain_ended(group.chain, i)
            if dones[i]:
                self.finished_members += 1
        for i in np.flatnonzero(dones):
            self._begin(int(i))
        if not self.done:
            self._fill_idle_envs()

    # ------------------------------------------------------------------ scheduling

    def _branch_point_reached(self, env_index: int, chain: Chain) -> None:
        # Member 0 took `interval` steps: its wrapper took a snapshot there, unless the episode ended at that step.
        snapshot = self.env.env_method(_TAKE_SNAPSHOT, indices=[env_index])[0]
        if snapshot is None:
            self._chain_ended(chain, env_index)
            return
        chain.head = snapshot
        self.waiting.appendleft(chain)  # a chain that goes on comes before new ones

    def _chain_ended(self, chain: Chain, env_index: int) -> None:
        # The trunk is a whole episode: for the episode statistics and for the monitor file of the env it ended in.
        self.episode_infos.append({"episode": {"r": chain.reward, "l": chain.length, "t": time.time() - chain.started}})
        self.env.env_method(_RECORD_EPISODE, chain.reward, chain.length, indices=[env_index])

    def _new_group(self) -> bool:
        # Create a group from a waiting chain, else from a new one: a free env never waits for a branch point. Each
        # group takes one chain and gives back at most one, so the chains carried to the next rollout stay fewer
        # than its groups.
        if len(self.groups) >= self.n_groups:
            return False
        chain = self.waiting.popleft() if self.waiting else Chain(seed=int(self.new_seed()))
        self.groups.append(_Group(chain, chain.head))
        group_index = len(self.groups) - 1
        # Member 0 first: its steps bring the chain's next branch point.
        self.queue.appendleft(_Job(group_index, 0))
        for member in range(1, self.group_size):
            self.queue.append(_Job(group_index, member))
        return True

    def _next_job(self, create: bool) -> _Job | None:
        # The next member waiting; with `create`, a new group's when none waits.
        if not self.queue and create:
            self._new_group()
        return self.queue.popleft() if self.queue else None

    def _arm(self, env_index: int, create: bool) -> None:
        # Arm the env's next segment: a member (see _next_job), or an idle step.
        job = self._next_job(create)
        self.armed[env_index] = job
        if job is None:
            self.env.env_method(_ARM_RESET, None, 1, None, indices=[env_index])
            return
        group = self.groups[job.group]
        snapshot_at = self.interval if job.member == 0 else None
        if group.head is None:
            self.env.env_method(_ARM_RESET, group.chain.seed, self.horizon, snapshot_at, indices=[env_index])
        else:
            self.env.env_method(_ARM_RESTORE, group.head, self.horizon, snapshot_at, indices=[env_index])

    def _begin(self, env_index: int) -> None:
        # The env has just started its armed segment: record it, then arm the one after from the members waiting (a
        # new group now would make its members wait for this segment to end; an env that is idle creates one).
        job = self.armed[env_index]
        self.playing[env_index] = job
        self.segment_steps[env_index] = 0
        if job is None:
            self.episodes[env_index] = -1
        else:
            episode = len(self._episode_groups)
            self._episode_groups.append(job.group)
            self.episodes[env_index] = episode
        self._arm(env_index, create=False)

    def _fill_idle_envs(self) -> None:
        # Envs armed with an idle step get a member instead: first those idle now, which start it at the next step and
        # may create a group for it; then those whose segment is nearest its horizon, from the members waiting.
        candidates = [i for i in range(self.env.num_envs) if self.armed[i] is None]
        candidates.sort(key=lambda i: (self.playing[i] is not None, -int(self.segment_steps[i])))
        for i in candidates:
            idle_now = self.playing[i] is None
            if not self.queue and not (idle_now and len(self.groups) < self.n_groups):
                return
            self.env.env_method(_CLEAR, indices=[i])
            self._arm(i, create=idle_now)

    def take_replayed_steps(self) -> int:
        """
        :return: Steps the envs replayed to restore snapshots since the rollout's reset (``"replay"`` snapshots).
        """
        return int(sum(self.env.env_method(_TAKE_REPLAYED)))
