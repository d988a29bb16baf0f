"""
The groups of one rollout: which env plays which episode of which group, from which reset seed.

With :mod:`sb3_gpg.branching` (groups from snapshots), the only modules that talk to the
:class:`~sb3_gpg.wrappers.GroupResetWrapper` inside the sub-environments (through ``VecEnv.env_method``,
with the wrapper's method names).
"""

from collections import defaultdict

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_gpg.safety import check_episode_steps
from sb3_gpg.wrappers import GroupResetWrapper, add_group_reset

_ARM = GroupResetWrapper.gpg_arm_reset.__name__
_CLEAR = GroupResetWrapper.gpg_clear.__name__
_RECORD_STARTS = GroupResetWrapper.gpg_record_starts.__name__
_TAKE_STARTS = GroupResetWrapper.gpg_take_starts.__name__
_SET_MAX_STEPS = GroupResetWrapper.gpg_set_max_episode_steps.__name__


def add_group_reset_to_vec_env(vec_env: VecEnv) -> VecEnv:
    """
    Put a :class:`~sb3_gpg.wrappers.GroupResetWrapper` inside every sub-environment of a ``DummyVecEnv``,
    and refuse a ``VecEnv`` (``SubprocVecEnv``) whose sub-environments lack one.

    :param vec_env: The vectorized environment, possibly wrapped (``VecNormalize``...).
    :return: ``vec_env``
    """
    base = vec_env.unwrapped
    if isinstance(base, DummyVecEnv):
        # `envs` is DummyVecEnv's public list of sub-environments; the wrapper goes inside each.
        base.envs = [add_group_reset(sub_env) for sub_env in base.envs]
    if not all(vec_env.env_is_wrapped(GroupResetWrapper)):
        raise ValueError(
            f"GPG needs a GroupResetWrapper inside every sub-environment of a {type(base).__name__} to start the "
            "episodes of a group from the same state. Build the env with it, for example "
            "make_vec_env(env_id, n_envs=8, vec_env_cls=SubprocVecEnv, wrapper_class=sb3_gpg.add_group_reset)."
        )
    return vec_env


def configure_envs(env: VecEnv, max_episode_steps: int | None) -> int | None:
    """
    Pass GPG's step cap to the sub-environments and find the longest episode they allow.

    :param env: The training environment.
    :param max_episode_steps: GPG's optional cap on episode length.
    :return: ``max_episode_steps``, else the sub-environments' time limit, else ``None`` (none declared).
    """
    env.env_method(_SET_MAX_STEPS, max_episode_steps)
    spec_limits = [getattr(spec, "max_episode_steps", None) for spec in env.get_attr("spec")]
    limits = [limit for limit in spec_limits if limit is not None]
    return max_episode_steps or (max(limits) if len(limits) == len(spec_limits) else None)


class GroupRollout:
    """
    One rollout's groups: ``len(group_seeds)`` groups of ``group_size`` member episodes, played by the envs of ``env``.

    A group's members are its first ``group_size`` episodes to *start*; membership depends only on
    when an env becomes free, never on how an episode turns out, so it adds no selection bias.
    When an episode starts, its env is armed with the seed of the group that has the most unclaimed
    need (``group_size`` minus started minus armed): its wrapper resets with that seed when the
    ``VecEnv`` auto-resets it, so the env starts the group's next member at once. Once every need is
    claimed, free envs are armed as backups of the neediest group: whichever armed env frees up first
    starts the member, and an env whose armed group has filled meanwhile plays an extra episode that
    is not stored ("idle", episode id -1).

    Usage: :meth:`reset` once, then :meth:`step` after every ``VecEnv.step`` until :attr:`done`;
    :attr:`episodes` tells which episode each env is playing and :attr:`episode_groups` (the
    buffer's input) maps each episode to its group.

    :param env: The training environment; every sub-environment holds a ``GroupResetWrapper``.
    :param group_seeds: Reset seed of each group.
    :param group_size: Member episodes per group.
    :param step_limit: The longest episode the envs allow (``None``: none declared), see :func:`configure_envs`.
    :param check_starts: Check, when the rollout is done, that the members of each group started from one state.
    """

    def __init__(
        self,
        env: VecEnv,
        group_seeds: np.ndarray,
        group_size: int,
        step_limit: int | None = None,
        check_starts: bool = False,
    ) -> None:
        self.env = env
        self.group_seeds = np.asarray(group_seeds, dtype=np.int64)
        self.group_size = group_size
        self.step_limit = step_limit
        self.check_starts = check_starts
        n_groups, n_envs = len(self.group_seeds), env.num_envs
        self.n_episodes = n_groups * group_size
        self.started = np.zeros(n_groups, dtype=np.int64)
        self.claimed = np.zeros(n_groups, dtype=np.int64)
        #: Group each env is armed with (the group of the episode it starts after its current one).
        self.armed: list[int | None] = [None] * n_envs
        #: Episode each env is playing, -1 when it plays none of the rollout's (idle).
        self.episodes = np.full(n_envs, -1, dtype=np.int64)
        #: Group of each episode of the rollout, indexed by episode id.
        self.episode_groups = np.full(self.n_episodes, -1, dtype=np.int64)
        self.episode_steps = np.zeros(n_envs, dtype=np.int64)
        self.n_finished = 0
        self.n_steps = 0
        self.idle_steps = 0

    @property
    def done(self) -> bool:
        """Whether every member episode of every group has finished."""
        return self.n_finished >= self.n_episodes

    @property
    def idle_fraction(self) -> float:
        """Fraction of the env steps of the rollout spent on episodes that are not stored."""
        return self.idle_steps / (self.n_steps * self.env.num_envs)

    def reset(self) -> np.ndarray:
        """
        Start one member episode in every env, through a ``VecEnv`` reset, and arm each env's next episode.

        :return: The first observations, as ``VecEnv.reset`` returns them.
        """
        if self.n_episodes < self.env.num_envs:
            raise ValueError(f"{self.n_episodes} episodes per rollout cannot occupy {self.env.num_envs} envs")
        self.env.env_method(_CLEAR)
        if self.check_starts:
            self.env.env_method(_RECORD_STARTS)
        for i in range(self.env.num_envs):
            group = self._neediest_group()
            self.env.env_method(_ARM, int(self.group_seeds[group]), indices=[i])  # type: ignore[index]
            self._start(i, group)
        for i in range(self.env.num_envs):
            self._arm(i)
        return self.env.reset()  # type: ignore[return-value]

    def step(self, dones: np.ndarray) -> np.ndarray:
        """
        Account for one ``VecEnv.step``: the envs that are done have already reset, with their armed seed.

        :param dones: Which envs finished an episode in this step.
        :return: The envs that finished a member episode of the rollout.
        """
        playing = self.episodes >= 0
        self.n_steps += 1
        self.idle_steps += int(len(playing) - playing.sum())
        self.episode_steps += 1
        check_episode_steps(self.episode_steps, self.step_limit)
        finished = np.flatnonzero(dones & playing)
        self.n_finished += len(finished)
        for i in np.flatnonzero(dones):
            group = self.armed[i]
            self.armed[i] = None
            if group is not None:
                self.claimed[group] -= 1
            self._start(int(i), group)
            self._arm(int(i))
        self.episode_steps[dones] = 0
        return finished

    def _neediest_group(self) -> int | None:
        need = self.group_size - self.started
        if not (need > 0).any():
            return None
        score = np.where(need > 0, need - self.claimed, np.iinfo(np.int64).min)
        return int(np.argmax(score))

    def _start(self, env_index: int, group: int | None) -> None:
        # Env `env_index` starts an episode with the seed of `group` (None: unseeded); it is a member if the group needs one.
        if group is not None and self.started[group] < self.group_size:
            episode = int(self.started.sum())
            self.started[group] += 1
            self.episode_groups[episode] = group
            self.episodes[env_index] = episode
        else:
            self.episodes[env_index] = -1

    def _arm(self, env_index: int) -> None:
        # Choose the group env `env_index` plays after its current episode, and arm its reset with that group's seed.
        group = self._neediest_group()
        self.armed[env_index] = group
        if group is not None:
            self.claimed[group] += 1
            self.env.env_method(_ARM, int(self.group_seeds[group]), indices=[env_index])

    def check_start_states(self) -> None:
        """
        Refuse an env whose resets with one seed gave different first observations (if ``check_starts``).

        GPG's baseline compares the returns of a group's episodes, which is only meaningful if they
        start from the same state. An env that ignores ``reset(seed=...)``, or draws its start from a
        global random generator, silently turns the baseline into noise.
        """
        if not self.check_starts:
            return
        digests: dict[int, set[str]] = defaultdict(set)
        env_of_seed: dict[int, int] = {}
        for env_index, starts in enumerate(self.env.env_method(_TAKE_STARTS)):
            for seed, digest in starts:
                digests[seed].add(digest)
                if len(digests[seed]) > 1:
                    env_of_seed.setdefault(seed, env_index)
        if env_of_seed:
            seed, env_index = next(iter(env_of_seed.items()))
            spec = self.env.get_attr("spec", indices=[env_index])[0]
            name = spec.id if spec is not None else self.env.env_method("__str__", indices=[env_index])[0]
            raise ValueError(
                f"The env {name!r} started from {len(digests[seed])} different first observations after reset(seed={seed}): "
                "GPG's baseline compares the returns of a group's episodes, which must start from the same state. "
                "Make the env honour reset(seed=...): call super().reset(seed=seed) and draw the start state from "
                "self.np_random (not from np.random, random or an unseeded space.sample())."
            )
