"""The estimator's pure functions against hand-computed examples."""

import numpy as np
import pytest

from sb3_gpg import estimator


def test_episode_lengths_and_timesteps():
    episode_ids = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(estimator.episode_lengths(episode_ids), [3, 1, 2])
    np.testing.assert_array_equal(estimator.timesteps_in_episode(episode_ids), [0, 1, 2, 0, 0, 1])
    assert estimator.episode_lengths(np.zeros(0)).size == 0


def test_discounted_returns_variable_lengths():
    # Episode 0: rewards 1, 2, 3; episode 1: reward 5; episode 2: rewards 0, 4
    rewards = np.array([1.0, 2.0, 3.0, 5.0, 0.0, 4.0])
    episode_ids = np.array([0, 0, 0, 1, 2, 2])
    gamma = 0.5
    expected = [
        1 + 0.5 * 2 + 0.25 * 3,  # 2.75
        2 + 0.5 * 3,  # 3.5
        3.0,
        5.0,
        0 + 0.5 * 4,  # 2.0
        4.0,
    ]
    np.testing.assert_allclose(estimator.discounted_returns(rewards, episode_ids, gamma), expected)


def test_discounted_returns_no_leak_across_episodes():
    # gamma = 1: returns-to-go must stop at each episode's end.
    rewards = np.ones(5)
    episode_ids = np.array([7, 7, 3, 3, 3])
    np.testing.assert_allclose(estimator.discounted_returns(rewards, episode_ids, 1.0), [2, 1, 3, 2, 1])


def test_discounted_returns_gamma_zero_is_reward():
    rewards = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(estimator.discounted_returns(rewards, np.array([0, 0, 1]), 0.0), rewards)


def test_timestep_bins_with_width():
    np.testing.assert_array_equal(estimator.timestep_bins(np.array([0, 1, 2, 3, 4, 5]), 2), [0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="bin_width"):
        estimator.timestep_bins(np.array([0]), 0)


def test_state_bins():
    np.testing.assert_array_equal(estimator.state_bins(np.array([[3], [1], [3]])), [3, 1, 3])
    np.testing.assert_array_equal(estimator.state_bins(np.array([2, 0])), [2, 0])


def test_grid_bins_rounding():
    obs = np.array([[0.04, 1.0], [-0.04, 1.01], [0.06, 1.0], [0.5, -1.0]])
    ids = estimator.grid_bins(obs, 0.1)
    # round(x / 0.1): rows 0 and 1 fall into cell (0, 10); row 2 into (1, 10); row 3 into (5, -10).
    assert ids[0] == ids[1]
    assert len({ids[0], ids[2], ids[3]}) == 3
    with pytest.raises(ValueError, match="bin_eps"):
        estimator.grid_bins(obs, 0.0)


def test_compute_bins_families_and_callable():
    timesteps = np.array([0, 1, 2, 0, 1])
    obs = np.arange(5, dtype=np.float32).reshape(5, 1)
    np.testing.assert_array_equal(estimator.compute_bins("none", obs, timesteps), np.zeros(5))
    np.testing.assert_array_equal(estimator.compute_bins("timestep", obs, timesteps), timesteps)
    np.testing.assert_array_equal(estimator.compute_bins("timestep", obs, timesteps, bin_width=2), [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(
        estimator.compute_bins(lambda o, t: (o[:, 0] > 1).astype(np.int64), obs, timesteps), [0, 0, 1, 1, 1]
    )
    with pytest.raises(ValueError, match="shape"):
        estimator.compute_bins(lambda o, t: np.zeros((5, 2), dtype=int), obs, timesteps)
    with pytest.raises(TypeError, match="integer"):
        estimator.compute_bins(lambda o, t: np.zeros(5), obs, timesteps)
    with pytest.raises(ValueError, match="Unknown binning"):
        estimator.compute_bins("bogus", obs, timesteps)
    with pytest.raises(ValueError, match="Dict"):
        estimator.compute_bins("grid", {"a": obs}, timesteps)


def test_first_visit_mask_with_revisits():
    episode_ids = np.array([0, 0, 0, 0, 1, 1, 1])
    bin_ids = np.array([5, 6, 5, 7, 6, 6, 5])
    expected = [True, True, False, True, True, False, True]
    np.testing.assert_array_equal(estimator.first_visit_mask(episode_ids, bin_ids), expected)


def test_group_advantages_timestep_bins_hand_computed():
    # One group, two episodes of different lengths, gamma = 1, timestep bins.
    # Episode 0 rewards [1, 1, 1] -> returns [3, 2, 1]; episode 1 rewards [1] -> returns [1].
    returns = np.array([3.0, 2.0, 1.0, 1.0])
    episode_ids = np.array([0, 0, 0, 1])
    group_ids = np.zeros(4, dtype=int)
    bins = np.array([0, 1, 2, 0])
    out = estimator.group_advantages(returns, group_ids, episode_ids, bins)
    # Bin 0 holds {3, 1}: mean 2. Bins 1 and 2 hold a single return each.
    np.testing.assert_allclose(out.baselines, [2.0, 2.0, 1.0, 2.0])
    np.testing.assert_allclose(out.advantages, [1.0, 0.0, 0.0, -1.0])
    np.testing.assert_array_equal(out.bin_counts, [2, 1, 1, 2])
    assert out.singleton_bin_fraction == pytest.approx(2 / 3)


def test_group_advantages_first_visit_and_groups():
    # Two groups; state bins; episode 0 revisits bin 'a' (0).
    # Group 0: ep 0 visits bins [0, 1, 0] with returns [10, 6, 2]; ep 1 visits [0, 1] with returns [4, 2].
    # Group 1: ep 2 visits [0] with return 100 (its bins never mix with group 0's).
    returns = np.array([10.0, 6.0, 2.0, 4.0, 2.0, 100.0])
    episode_ids = np.array([0, 0, 0, 1, 1, 2])
    group_ids = np.array([0, 0, 0, 0, 0, 1])
    bins = np.array([0, 1, 0, 0, 1, 0])
    out = estimator.group_advantages(returns, group_ids, episode_ids, bins)
    # Group 0, bin 0: first visits 10 (ep 0) and 4 (ep 1) -> mean 7; the revisit (return 2) is not in the mean.
    # Group 0, bin 1: 6 and 2 -> mean 4. Group 1, bin 0: 100 alone.
    np.testing.assert_allclose(out.baselines, [7.0, 4.0, 7.0, 7.0, 4.0, 100.0])
    # The revisit still gets an advantage: 2 - 7 = -5.
    np.testing.assert_allclose(out.advantages, [3.0, 2.0, -5.0, -3.0, -2.0, 0.0])
    assert out.singleton_bin_fraction == pytest.approx(1 / 3)


def test_group_advantages_empty():
    out = estimator.group_advantages(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))
    assert out.advantages.size == 0


def test_full_pipeline_discounted():
    # Two episodes in one group, gamma = 0.9, rewards [0, 1] and [1, 0, 1].
    rewards = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    episode_ids = np.array([0, 0, 1, 1, 1])
    returns = estimator.discounted_returns(rewards, episode_ids, 0.9)
    np.testing.assert_allclose(returns, [0.9, 1.0, 1 + 0.81, 0.9, 1.0])
    t = estimator.timesteps_in_episode(episode_ids)
    out = estimator.group_advantages(returns, np.zeros(5), episode_ids, estimator.timestep_bins(t))
    # t=0: {0.9, 1.81} mean 1.355; t=1: {1.0, 0.9} mean 0.95; t=2: {1.0} alone.
    np.testing.assert_allclose(out.advantages, [0.9 - 1.355, 0.05, 1.81 - 1.355, -0.05, 0.0])
