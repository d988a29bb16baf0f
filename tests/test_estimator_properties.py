"""Property-based tests of the estimator (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_gpg import estimator


@st.composite
def groups(draw, fixed_length: bool = False):
    """A rollout of 1-3 groups of 2-5 episodes with rewards in [-10, 10] and timestep or random bins."""
    n_groups = draw(st.integers(1, 3))
    rewards, episode_ids, group_ids = [], [], []
    episode = 0
    length = draw(st.integers(1, 6))
    for group in range(n_groups):
        for _ in range(draw(st.integers(2, 5))):
            n = length if fixed_length else draw(st.integers(1, 6))
            rewards += draw(st.lists(st.floats(-10, 10, allow_nan=False), min_size=n, max_size=n))
            episode_ids += [episode] * n
            group_ids += [group] * n
            episode += 1
    return np.array(rewards), np.array(episode_ids), np.array(group_ids)


def advantages(rewards, episode_ids, group_ids, bins=None, gamma=0.9):
    returns = estimator.discounted_returns(rewards, episode_ids, gamma)
    if bins is None:
        bins = estimator.timestep_bins(estimator.timesteps_in_episode(episode_ids))
    return estimator.group_advantages(returns, group_ids, episode_ids, bins), returns, bins


@settings(max_examples=60, deadline=None)
@given(groups(), st.integers(0, 3))
def test_first_visit_advantages_of_a_bin_sum_to_zero(rollout, n_bins_seed):
    rewards, episode_ids, group_ids = rollout
    rng = np.random.default_rng(n_bins_seed)
    bins = rng.integers(0, 3, size=rewards.size)  # revisits happen
    out, _, bins = advantages(rewards, episode_ids, group_ids, bins)
    first = estimator.first_visit_mask(episode_ids, bins)
    for key in {(g, b) for g, b in zip(group_ids, bins, strict=True)}:
        rows = first & (group_ids == key[0]) & (bins == key[1])
        assert abs(out.advantages[rows].sum()) < 1e-6 * max(1.0, np.abs(out.advantages).max())


@settings(max_examples=60, deadline=None)
@given(groups(fixed_length=True), st.floats(-100, 100, allow_nan=False))
def test_constant_reward_shift_leaves_timestep_advantages_unchanged(rollout, shift):
    rewards, episode_ids, group_ids = rollout
    base, _, _ = advantages(rewards, episode_ids, group_ids)
    shifted, _, _ = advantages(rewards + shift, episode_ids, group_ids)
    np.testing.assert_allclose(shifted.advantages, base.advantages, atol=1e-6 * (1 + abs(shift)))


@settings(max_examples=60, deadline=None)
@given(groups(), st.floats(1e-6, 1e6))
def test_scaling_rewards_scales_advantages(rollout, scale):
    rewards, episode_ids, group_ids = rollout
    base, _, _ = advantages(rewards, episode_ids, group_ids)
    scaled, _, _ = advantages(rewards * scale, episode_ids, group_ids)
    np.testing.assert_allclose(scaled.advantages, base.advantages * scale, rtol=1e-6, atol=1e-9 * scale)


@settings(max_examples=60, deadline=None)
@given(groups(), st.randoms(use_true_random=False))
def test_permuting_episodes_permutes_advantages(rollout, random):
    rewards, episode_ids, group_ids = rollout
    base, _, _ = advantages(rewards, episode_ids, group_ids)
    # Reorder whole episodes (keeping each episode contiguous and in time order), with new ids.
    order = list(np.unique(episode_ids))
    random.shuffle(order)
    rows = np.concatenate([np.flatnonzero(episode_ids == e) for e in order])
    new_ids = np.repeat(np.arange(len(order)), [np.sum(episode_ids == e) for e in order])
    permuted, _, _ = advantages(rewards[rows], new_ids, group_ids[rows])
    np.testing.assert_allclose(permuted.advantages, base.advantages[rows], rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(groups())
def test_single_bin_is_group_mean_baseline(rollout):
    rewards, episode_ids, group_ids = rollout
    out, returns, _ = advantages(rewards, episode_ids, group_ids, bins=np.zeros(rewards.size, dtype=np.int64))
    for g in np.unique(group_ids):
        starts = (group_ids == g) & (estimator.timesteps_in_episode(episode_ids) == 0)
        np.testing.assert_allclose(out.baselines[group_ids == g], returns[starts].mean())


@settings(max_examples=60, deadline=None)
@given(groups(), st.integers(0, 3), st.floats(-50, 50, allow_nan=False))
def test_leave_one_out_baseline_ignores_own_episode(rollout, bins_seed, shift):
    rewards, episode_ids, group_ids = rollout
    bins = np.random.default_rng(bins_seed).integers(0, 3, size=rewards.size)
    returns = estimator.discounted_returns(rewards, episode_ids, 0.9)
    base = estimator.group_advantages(returns, group_ids, episode_ids, bins, leave_one_out=True)
    # Changing episode 0's returns moves no baseline of episode 0's steps whose bin holds other episodes
    # (a step alone in its bin gets zero advantage, whatever its return).
    own = episode_ids == episode_ids[0]
    changed = estimator.group_advantages(returns + shift * own, group_ids, episode_ids, bins, leave_one_out=True)
    shared = own & (base.bin_counts > 1)
    np.testing.assert_allclose(changed.baselines[shared], base.baselines[shared], atol=1e-9)
    np.testing.assert_array_equal(changed.advantages[own & (base.bin_counts == 1)], 0.0)


@settings(max_examples=40, deadline=None)
@given(groups(), st.integers(1, 5), st.integers(2, 4), st.floats(-50, 50, allow_nan=False))
def test_knn_baseline_ignores_own_episode(rollout, k, n_folds, shift):
    rewards, episode_ids, _ = rollout
    n_episodes = np.unique(episode_ids).size
    n_folds = min(n_folds, n_episodes)
    if n_episodes < 2:
        return
    features = np.random.default_rng(0).normal(size=(rewards.size, 3))
    returns = estimator.discounted_returns(rewards, episode_ids, 0.9)
    base = estimator.knn_baselines(features, returns, episode_ids, n_neighbors=k, n_folds=n_folds)
    own = episode_ids == episode_ids[0]
    changed = estimator.knn_baselines(features, returns + shift * own, episode_ids, n_neighbors=k, n_folds=n_folds)
    np.testing.assert_allclose(changed[own], base[own], atol=1e-9)
