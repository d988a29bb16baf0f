"""Properties of GroupRollout, the owner of a rollout's groups, on scripted envs inside a real DummyVecEnv."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_gpg import GPG
from sb3_gpg.rollout import GroupRollout
from sb3_gpg.wrappers import GroupResetWrapper
from tests.envs import GlobalRandomStartEnv, with_seeded_spaces


class ScriptedEnv(gym.Env):
    """Plays episodes of scripted lengths (the n-th episode lasts ``lengths[n]`` steps) and logs each reset's seed."""

    def __init__(self, lengths: list[int], start_from_seed: bool = True) -> None:
        super().__init__()
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.lengths = lengths
        self.start_from_seed = start_from_seed
        self.seeds: list[int | None] = []
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.seeds.append(seed)
        self._t = 0
        start = float(self.np_random.integers(1000)) if self.start_from_seed else 0.0
        return np.array([start], dtype=np.float32), {}

    def step(self, action):
        self._t += 1
        length = self.lengths[(len(self.seeds) - 1) % len(self.lengths)]
        return np.zeros(1, dtype=np.float32), float(self.np_random.normal()), self._t >= length, False, {}


def run_rollout(lengths_per_env: list[list[int]], n_groups: int, group_size: int, seed: int = 0):
    """
    Run one rollout to its end, as GPG.collect_rollouts drives it.

    :return: the rollout, its envs, the episode id each env started at each of its resets, and the
        invariant checks made after every step.
    """
    envs = [ScriptedEnv(lengths) for lengths in lengths_per_env]
    vec_env = DummyVecEnv([lambda env=env: GroupResetWrapper(env) for env in envs])
    group_seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=n_groups)
    rollout = GroupRollout(vec_env, group_seeds, group_size, check_starts=True)
    rollout.reset()
    started = [[int(e)] for e in rollout.episodes]

    def check_arming() -> None:
        # Every env is armed for its next episode while any group still needs members.
        needs_members = (rollout.started < group_size).any()
        assert not needs_members or all(group is not None for group in rollout.armed)

    check_arming()
    assert (rollout.episodes >= 0).all(), "at the start every env plays a member episode"
    while not rollout.done:
        armed_before = list(rollout.armed)
        _, _, dones, _ = vec_env.step(np.zeros(len(envs), dtype=np.int64))
        rollout.step(dones)
        for i in np.flatnonzero(dones):
            started[i].append(int(rollout.episodes[i]))
            if rollout.episodes[i] < 0:
                # An env plays an unstored episode only if the group it was armed with was already full.
                group = armed_before[i]
                assert group is None or rollout.started[group] == group_size
        check_arming()
    rollout.check_start_states()
    return rollout, envs, started


lengths_strategy = st.lists(st.integers(1, 6), min_size=1, max_size=12)


@st.composite
def rollout_cases(draw):
    n_envs = draw(st.integers(1, 5))
    group_size = draw(st.integers(2, 5))
    n_groups = draw(st.integers(max(1, -(-n_envs // group_size)), 4))
    lengths = [draw(lengths_strategy) for _ in range(n_envs)]
    return lengths, n_groups, group_size


@settings(max_examples=60, deadline=None)
@given(rollout_cases(), st.integers(0, 2**16))
def test_every_group_gets_group_size_members_sharing_its_seed(case, seed):
    lengths, n_groups, group_size = case
    rollout, envs, started = run_rollout(lengths, n_groups, group_size, seed)
    members = np.bincount(rollout.episode_groups, minlength=n_groups)
    assert members.tolist() == [group_size] * n_groups
    assert rollout.n_finished == n_groups * group_size
    episode_seeds: dict[int, int | None] = {}
    for env, episodes in zip(envs, started, strict=True):
        # The n-th reset of an env started the n-th episode the rollout assigned to it.
        assert len(env.seeds) == len(episodes)
        for reset_seed, episode in zip(env.seeds, episodes, strict=True):
            if episode >= 0:
                episode_seeds[episode] = reset_seed
    assert sorted(episode_seeds) == list(range(n_groups * group_size)), "episode ids are 0..n_episodes-1, each once"
    for episode, reset_seed in episode_seeds.items():
        assert reset_seed == rollout.group_seeds[rollout.episode_groups[episode]], "a member resets with its group's seed"


@settings(max_examples=60, deadline=None)
@given(rollout_cases(), st.integers(0, 30), st.integers(1, 6), st.integers(0, 2**16))
def test_membership_does_not_depend_on_how_episodes_turn_out(case, which, new_length, seed):
    lengths, n_groups, group_size = case
    env_index = which % len(lengths)
    episode_index = which % len(lengths[env_index])
    changed = [list(env_lengths) for env_lengths in lengths]
    changed[env_index][episode_index] = new_length
    rollout_a, envs_a, started_a = run_rollout(lengths, n_groups, group_size, seed)
    rollout_b, envs_b, started_b = run_rollout(changed, n_groups, group_size, seed)
    # The changed episode (if the rollout reached it) has the same seed, group and membership in both runs:
    # they were decided when it started, before its length (or any reward) was known.
    if episode_index < min(len(started_a[env_index]), len(started_b[env_index])):
        episode_a, episode_b = started_a[env_index][episode_index], started_b[env_index][episode_index]
        assert envs_a[env_index].seeds[episode_index] == envs_b[env_index].seeds[episode_index]
        assert (episode_a >= 0) == (episode_b >= 0)
        if episode_a >= 0:
            assert rollout_a.episode_groups[episode_a] == rollout_b.episode_groups[episode_b]


def test_idle_env_only_when_its_armed_group_filled_first():
    # Two envs, one group of 3: both start a member; the short env starts the third member, and the
    # long env, armed as a backup of the same group, then plays an extra (idle, unstored) episode.
    rollout, _, started = run_rollout([[1, 1, 1], [5, 5]], n_groups=1, group_size=3)
    assert started[0][:2] == [0, 2] and started[1][:2] == [1, -1]
    assert rollout.idle_fraction > 0


def test_env_ignoring_the_seed_is_refused_with_its_name_and_the_fix():
    with pytest.raises(ValueError, match=r"(?s)different first observations.*honour reset\(seed=\.\.\.\)"):
        GPG("MlpPolicy", GlobalRandomStartEnv(), group_size=4, n_groups=1, seed=0).learn(8)
    gym.register("GlobalRandomStart-v0", entry_point=GlobalRandomStartEnv)
    try:
        with pytest.raises(ValueError, match="'GlobalRandomStart-v0' started from"):
            GPG("MlpPolicy", "GlobalRandomStart-v0", group_size=4, n_groups=1, seed=0).learn(8)
    finally:
        gym.registry.pop("GlobalRandomStart-v0")


def test_seed_check_passes_deterministic_starts_and_seeded_spaces():
    # A start state that ignores the seed but is always the same passes: the group assumption holds.
    envs = [ScriptedEnv([2, 3], start_from_seed=False)]
    vec_env = DummyVecEnv([lambda: GroupResetWrapper(envs[0])])
    rollout = GroupRollout(vec_env, np.array([1, 2]), 2, check_starts=True)
    rollout.reset()
    while not rollout.done:
        rollout.step(vec_env.step(np.zeros(1, dtype=np.int64))[2])
    rollout.check_start_states()
    from stable_baselines3.common.envs import IdentityEnv

    # SB3's IdentityEnv draws its state from its action space, which reset(seed=...) does not seed: refused,
    # and accepted once the spaces are seeded.
    with pytest.raises(ValueError, match="different first observations"):
        GPG("MlpPolicy", IdentityEnv(8, ep_length=4), group_size=4, n_groups=1, seed=0).learn(8)
    GPG("MlpPolicy", with_seeded_spaces(IdentityEnv)(8, ep_length=4), group_size=4, n_groups=1, seed=0).learn(8)


def test_start_states_are_checked_on_the_first_rollout_only():
    model = GPG("MlpPolicy", "CartPole-v1", group_size=2, n_groups=1, n_epochs=1, seed=0)
    model.learn(1)
    assert model._starts_checked
    # Later rollouts record nothing: the wrappers hold no digests.
    model.learn(200, reset_num_timesteps=False)
    assert model.get_env().env_method("gpg_take_starts") == [[]]
