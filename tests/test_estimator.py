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


def test_group_advantages_leave_one_out_hand_computed():
    # One group, three episodes, one bin each step (timestep bins), gamma irrelevant (returns given).
    # t=0 holds {3, 6, 9}; t=1 holds {1, 5} (episode 2 ended); t=2 holds {4} alone.
    returns = np.array([3.0, 1.0, 4.0, 6.0, 5.0, 9.0])
    episode_ids = np.array([0, 0, 0, 1, 1, 2])
    bins = np.array([0, 1, 2, 0, 1, 0])
    out = estimator.group_advantages(returns, np.zeros(6), episode_ids, bins, leave_one_out=True)
    # Baselines: the mean of the *other* episodes: t=0 ep0 (6+9)/2, ep1 (3+9)/2, ep2 (3+6)/2; t=1 ep0 5, ep1 1.
    np.testing.assert_allclose(out.baselines[[0, 1, 3, 4, 5]], [7.5, 5.0, 6.0, 1.0, 4.5])
    np.testing.assert_allclose(out.advantages, [3 - 7.5, 1 - 5.0, 0.0, 6 - 6.0, 5 - 1.0, 9 - 4.5])
    # RLOO = plain-mean advantage * n / (n - 1).
    plain = estimator.group_advantages(returns, np.zeros(6), episode_ids, bins)
    np.testing.assert_allclose(out.advantages[[0, 3, 5]], plain.advantages[[0, 3, 5]] * 3 / 2)


def test_group_advantages_leave_one_out_revisit_uses_others_only():
    # Episode 0 visits bin 0 twice (returns 10 then 2); episode 1 visits it once (return 4).
    returns = np.array([10.0, 2.0, 4.0])
    out = estimator.group_advantages(returns, np.zeros(3), np.array([0, 0, 1]), np.array([0, 0, 0]), leave_one_out=True)
    np.testing.assert_allclose(out.baselines, [4.0, 4.0, 10.0])
    np.testing.assert_allclose(out.advantages, [6.0, -2.0, -6.0])


def test_group_advantages_thin_bin_fallback_pools_groups():
    # Two groups of two episodes. t=0: group 0 {2, 4}, group 1 {10, 20}. t=1: only episode 0 (group 0,
    # return 1) and episode 2 (group 1, return 7) reach it: both group bins are thin (1 return).
    returns = np.array([2.0, 1.0, 4.0, 10.0, 7.0, 20.0])
    episode_ids = np.array([0, 0, 1, 2, 2, 3])
    group_ids = np.array([0, 0, 0, 1, 1, 1])
    bins = np.array([0, 1, 0, 0, 1, 0])
    plain = estimator.group_advantages(returns, group_ids, episode_ids, bins)
    np.testing.assert_allclose(plain.advantages[[1, 4]], [0.0, 0.0])
    out = estimator.group_advantages(returns, group_ids, episode_ids, bins, min_bin_count=2)
    # t=1 pooled over groups: {1, 7}, mean 4; t=0 keeps its group means 3 and 15.
    np.testing.assert_allclose(out.baselines, [3.0, 4.0, 3.0, 15.0, 4.0, 15.0])
    np.testing.assert_allclose(out.advantages, [-1.0, -3.0, 1.0, -5.0, 3.0, 5.0])
    np.testing.assert_array_equal(out.bin_counts, plain.bin_counts)  # counts stay those of the group bins
    with pytest.raises(ValueError, match="min_bin_count"):
        estimator.group_advantages(returns, group_ids, episode_ids, bins, min_bin_count=1)


def test_group_advantages_per_bin_std():
    # t=0 holds {1, 3} (std 1); t=1 holds {10, 10, 40} (mean 20, std sqrt(200)); t=2: a single return.
    returns = np.array([1.0, 10.0, 7.0, 3.0, 10.0, 0.0, 40.0])
    episode_ids = np.array([0, 0, 0, 1, 1, 2, 2])
    bins = np.array([0, 1, 2, 0, 1, 0, 1])
    # Episode 2 is in bin 0 too: t=0 holds {1, 3, 0}; recompute by hand below.
    out = estimator.group_advantages(returns, np.zeros(7), episode_ids, bins, per_bin_std=True)
    std0, std1 = np.std([1.0, 3.0, 0.0]), np.std([10.0, 10.0, 40.0])
    mean0 = 4.0 / 3.0
    expected = [(1 - mean0) / std0, -10 / std1, 0.0, (3 - mean0) / std0, -10 / std1, (0 - mean0) / std0, 20 / std1]
    np.testing.assert_allclose(out.advantages, expected, rtol=1e-6)


def test_group_advantages_per_bin_std_equal_returns_give_zero():
    # Both episodes return 5 at t=0, and episode 0 revisits the bin with return 1: no scale, zero advantage.
    returns = np.array([5.0, 1.0, 5.0])
    out = estimator.group_advantages(returns, np.zeros(3), np.array([0, 0, 1]), np.zeros(3), per_bin_std=True)
    np.testing.assert_array_equal(out.advantages, [0.0, 0.0, 0.0])


def test_knn_features_standardised_with_time_weight():
    obs = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])
    features = estimator.knn_features(obs, np.array([0, 1, 2]), time_weight=0.5)
    # Column 0 has std sqrt(8/3); column 1 is constant (left as is); time has std sqrt(2/3), then * 0.5.
    np.testing.assert_allclose(features[:, 0], obs[:, 0] / np.sqrt(8 / 3))
    np.testing.assert_allclose(features[:, 1], [10.0, 10.0, 10.0])
    np.testing.assert_allclose(features[:, 2], 0.5 * np.array([0, 1, 2]) / np.sqrt(2 / 3))
    dict_features = estimator.knn_features({"b": obs[:, 1:], "a": obs[:, :1]}, np.array([0, 1, 2]))
    np.testing.assert_allclose(dict_features[:, 0], features[:, 0])  # keys in sorted order


def test_knn_baselines_hand_computed_cross_fitting():
    # Four one-dimensional episodes of two steps; folds by episode order: {0, 2} and {1, 3}.
    features = np.array([[0.0], [1.0], [0.1], [1.1], [0.2], [1.2], [5.0], [6.0]])
    returns = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0])
    episode_ids = np.repeat([0, 1, 2, 3], 2)
    baselines = estimator.knn_baselines(features, returns, episode_ids, n_neighbors=1, n_folds=2)
    # Fold 0 (episodes 0, 2) looks in episodes 1, 3: 0.0 -> 0.1 (30), 1.0 -> 1.1 (40), 0.2 -> 0.1 (30), 1.2 -> 1.1 (40).
    # Fold 1 (episodes 1, 3) looks in episodes 0, 2: 0.1 and 1.1 are ties; 5 -> 1.2 (60), 6 -> 1.2 (60).
    np.testing.assert_allclose(baselines[[0, 1, 4, 5, 6, 7]], [30.0, 40.0, 30.0, 40.0, 60.0, 60.0])
    two = estimator.knn_baselines(features, returns, episode_ids, n_neighbors=2, n_folds=2)
    np.testing.assert_allclose(two[[0, 6]], [(30 + 40) / 2, (60 + 20) / 2])
    with pytest.raises(ValueError, match="n_folds"):
        estimator.knn_baselines(features, returns, episode_ids, n_folds=5)
    with pytest.raises(ValueError, match="two episodes"):
        estimator.knn_baselines(features[:2], returns[:2], episode_ids[:2], n_folds=2)


def test_returns_tie_hand_computed():
    # Two episodes of one group, two steps each.
    groups, steps = np.zeros(4, dtype=int), np.array([0, 1, 0, 1])
    assert estimator.returns_tie(np.array([2.0, 1.0, 2.0, 1.0]), groups, steps)
    assert not estimator.returns_tie(np.array([2.0, 1.0, 3.0, 1.0]), groups, steps)
    assert not estimator.returns_tie(np.array([2.0, 1.0, 2.0, 0.0]), groups, steps)
    # Different returns in different groups are no spread: each group's episodes are alike.
    assert estimator.returns_tie(np.array([2.0, 1.0, 3.0, 1.0]), np.array([0, 0, 1, 1]), steps)
    # Unless the baseline compares episodes across groups (knn: one scope for the whole rollout).
    assert not estimator.returns_tie(np.array([2.0, 1.0, 3.0, 1.0]), np.zeros(4, dtype=int), steps)
    # Rounding of equal sums is not a spread.
    one_group = np.zeros(2, dtype=int)
    assert estimator.returns_tie(np.array([0.1 + 0.2, 0.3]), one_group, np.zeros(2, dtype=int))
    # An episode that goes on longer, with zero rewards, returns as much as the others at every step.
    assert estimator.returns_tie(np.array([1.0, 1.0, 0.0]), np.zeros(3, dtype=int), np.array([0, 0, 1]))


def test_returns_tie_tolerance_is_relative():
    one_group, start = np.zeros(2, dtype=int), np.zeros(2, dtype=int)
    # Returns of tiny rewards that differ are a spread (an absolute floor of 1e-6 would call them tied) ...
    assert not estimator.returns_tie(np.array([1e-8, 2e-8]), one_group, start)
    # ... and returns that are all zero tie, while zero and anything else do not.
    assert estimator.returns_tie(np.zeros(2), one_group, start)
    assert not estimator.returns_tie(np.array([0.0, 1e-300]), one_group, start)
    # Large returns that differ in their rounding only tie.
    assert estimator.returns_tie(np.array([1e6, 1e6 * (1 + 1e-9)]), one_group, start)
    assert estimator.tie_tolerance(np.array([-3.0, 2.0])) == 3e-6


def test_returns_tie_with_pooled_thin_bins():
    # Group 0 holds two episodes at step 0 and one at step 1; group 1 likewise, with another return at step 1.
    groups = np.array([0, 0, 0, 1, 1, 1])
    steps = np.array([0, 1, 0, 1, 0, 0])
    returns = np.array([2.0, 1.0, 2.0, 5.0, 7.0, 7.0])
    # Within each group every time step ties (step 1 holds one return per group) ...
    assert estimator.returns_tie(returns, groups, steps)
    # ... but with min_bin_count=2, step 1 is thin in both groups and pools them: 1 against 5 is a spread, as
    # group_advantages would then see it.
    assert not estimator.returns_tie(returns, groups, steps, min_bin_count=2)
    pooled = estimator.group_advantages(returns, groups, np.array([0, 0, 1, 2, 2, 3]), steps, min_bin_count=2)
    assert np.any(pooled.advantages != 0)


def test_tie_at_best():
    # CartPole solved: every episode returns the best the run has seen, after worse ones.
    assert estimator.tie_at_best(np.array([500.0, 500.0]), (9.0, 500.0))
    # Tied below the best seen: a stall, not success.
    assert not estimator.tie_at_best(np.array([200.0, 200.0]), (9.0, 500.0))
    # Every return so far the same (MountainCar timing out from the start): no best shown yet.
    assert not estimator.tie_at_best(np.array([-200.0, -200.0]), (-200.0, -200.0))
    assert not estimator.tie_at_best(np.array([1.0]), None)
    # Within the relative tolerance of the best.
    assert estimator.tie_at_best(np.array([500.0 * (1 - 1e-9)]), (9.0, 500.0))


def test_refined_timestep_bins_hand_computed():
    # One group, width-2 bins. Episode 0: rewards 1, 1, 1 (steps 0-2); episode 1: rewards 0, 1 (steps 0-1).
    rewards = np.array([1.0, 1.0, 1.0, 0.0, 1.0])
    episodes = np.array([0, 0, 0, 1, 1])
    steps = estimator.timesteps_in_episode(episodes)
    returns = estimator.discounted_returns(rewards, episodes, 1.0)  # 3, 2, 1, 1, 1
    bins = estimator.timestep_bins(steps, 2)  # 0, 0, 1, 0, 0
    groups = np.zeros(5, dtype=int)
    plain = estimator.group_advantages(returns, groups, episodes, bins)
    # The paper's rule compares step 1 with the bin's returns at step 0 (mean (3 + 1) / 2 = 2): a time-only offset.
    np.testing.assert_allclose(plain.advantages, [1.0, 0.0, 0.0, -1.0, -1.0])
    refined = estimator.group_advantages(returns, groups, episodes, bins, timesteps=steps)
    # Step 0: (3 - 1) / 2 each way; step 1: both episodes hold a return there (2 and 1, mean 1.5); step 2: episode 0
    # is alone in its bin, so exactly zero.
    np.testing.assert_array_equal(refined.advantages, [1.0, 0.5, 0.0, -1.0, -0.5])
    np.testing.assert_allclose(refined.baselines, returns - refined.advantages)


def test_refined_bins_thin_step_takes_its_entry_advantage():
    # Width-3 bins, one group; episode 0 lasts 3 steps, episode 1 one step: at steps 1-2 episode 0 is alone.
    rewards = np.array([1.0, 2.0, 3.0, 4.0])
    episodes = np.array([0, 0, 0, 1])
    steps = estimator.timesteps_in_episode(episodes)
    returns = estimator.discounted_returns(rewards, episodes, 1.0)  # 6, 5, 3, 4
    result = estimator.group_advantages(returns, np.zeros(4, dtype=int), episodes, np.zeros(4, dtype=int), timesteps=steps)
    # At step 0 the two returns 6 and 4 (mean 5); steps 1-2 inherit episode 0's advantage at its entry, 1.
    np.testing.assert_array_equal(result.advantages, [1.0, 1.0, 1.0, -1.0])
    np.testing.assert_allclose(result.baselines, [5.0, 4.0, 2.0, 5.0])
    # A lone episode in its bin is exactly zero everywhere, with or without the refinement.
    zeros = np.zeros(3, dtype=int)
    lone = estimator.group_advantages(returns[:3], zeros, episodes[:3], zeros, timesteps=steps[:3])
    assert np.all(lone.advantages == 0.0)


def test_refined_bins_of_width_one_change_nothing():
    rng = np.random.default_rng(3)
    episodes = np.repeat(np.arange(6), rng.integers(1, 9, size=6))
    steps = estimator.timesteps_in_episode(episodes)
    returns = estimator.discounted_returns(rng.normal(size=episodes.size), episodes, 0.9)
    groups = episodes // 3
    for options in ({}, {"leave_one_out": True}, {"per_bin_std": True}, {"min_bin_count": 3}):
        plain = estimator.group_advantages(returns, groups, episodes, steps, **options)
        refined = estimator.group_advantages(returns, groups, episodes, steps, **options, timesteps=steps)
        np.testing.assert_array_equal(plain.advantages, refined.advantages)


def test_refined_bins_remove_the_time_offset_of_constant_rewards():
    # Acrobot-like: reward -1 per step, a group of 4 episodes of lengths 80-100, width-10 bins. With equal
    # rewards, any advantage is the return difference of lengths, so at a step that every episode reaches all
    # returns differ only by how much longer each lasts: the refinement compares them at that step, the plain
    # rule adds the steps since the bin's first, a function of time alone.
    lengths = np.array([80, 87, 93, 100])
    episodes = np.repeat(np.arange(4), lengths)
    steps = estimator.timesteps_in_episode(episodes)
    returns = estimator.discounted_returns(-np.ones(episodes.size), episodes, 1.0)
    bins = estimator.timestep_bins(steps, 10)
    groups = np.zeros(episodes.size, dtype=int)
    refined = estimator.group_advantages(returns, groups, episodes, bins, timesteps=steps)
    per_step = estimator.group_advantages(returns, groups, episodes, steps)
    shared = steps < 80  # every episode alive: per-step baselines, identical to width-1 bins
    np.testing.assert_array_equal(refined.advantages[shared], per_step.advantages[shared])
    plain = estimator.group_advantages(returns, groups, episodes, bins)
    offset = plain.advantages[shared] - per_step.advantages[shared]
    np.testing.assert_allclose(offset, steps[shared] % 10)  # the plain rule's time-only offset, 0 to 9


def test_novelty_rewards_hand_computed():
    # Episode 0 visits x = 0, 1 and episode 1 x = 3, 5; two folds: each step is compared with the other episode.
    features = np.array([[0.0], [1.0], [3.0], [5.0]])
    novelty = estimator.novelty_rewards(features, np.array([0, 0, 1, 1]), n_neighbors=1)
    np.testing.assert_allclose(novelty, np.log1p([3.0, 2.0, 2.0, 4.0]))
    # The second nearest: for x = 0 among {3, 5} it is 5.
    novelty = estimator.novelty_rewards(features, np.array([0, 0, 1, 1]), n_neighbors=2)
    np.testing.assert_allclose(novelty, np.log1p([5.0, 4.0, 3.0, 5.0]))


def test_novelty_rewards_projects_wide_features():
    rng = np.random.default_rng(1)
    features, episodes = rng.normal(size=(40, 100)), np.repeat(np.arange(4), 10)
    novelty = estimator.novelty_rewards(features, episodes, n_neighbors=3, max_dims=8)
    assert novelty.shape == (40,) and np.all(np.isfinite(novelty)) and np.all(novelty > 0)
    np.testing.assert_array_equal(novelty, estimator.novelty_rewards(features, episodes, n_neighbors=3, max_dims=8))
    # Up to max_dims columns the features are used as they are.
    exact = estimator.novelty_rewards(features[:, :8], episodes, n_neighbors=3, max_dims=8)
    assert not np.allclose(exact, novelty)
    with pytest.raises(ValueError, match="two episodes"):
        estimator.novelty_rewards(features, np.zeros(40, dtype=int))


def test_bin_credit_gives_every_step_its_episodes_advantage_at_the_bin_entry():
    # One group, one bin (binning "none"). Episode 0: rewards 1, 1 (returns 2, 1); episode 1: reward 0 (return 0).
    returns = np.array([2.0, 1.0, 0.0])
    episodes, zeros = np.array([0, 0, 1]), np.zeros(3, dtype=int)
    step = estimator.group_advantages(returns, zeros, episodes, zeros)
    np.testing.assert_array_equal(step.advantages, [1.0, 0.0, -1.0])  # the later step against the start's mean
    outcome = estimator.group_advantages(returns, zeros, episodes, zeros, credit="bin")
    np.testing.assert_array_equal(outcome.advantages, [1.0, 1.0, -1.0])  # GRPO's outcome advantage
    np.testing.assert_allclose(outcome.baselines, returns - outcome.advantages)
    with pytest.raises(ValueError, match="credit"):
        estimator.check_baseline("group", {"credit": "episode"})
