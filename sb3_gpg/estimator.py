"""
The GPG advantage estimator, as pure vectorised NumPy functions.

A rollout is stored flat: one row per environment step, every episode contiguous.
Each row carries the id of its episode, the id of its group, its time step within
the episode, its reward and its observation. From these the functions below compute

1. discounted Monte Carlo returns, cut at the end of each episode (no bootstrap);
2. a bin id per step, from a binning function ``f(s, t)``;
3. the first visit of each episode to each bin;
4. the baseline of each step: the mean of the first-visit returns of its bin
   within its group;
5. the advantage ``A_t = R_t - baseline_t`` for every step, later visits included.

Time-step bins wider than one step are refined (``timesteps`` of :func:`group_advantages`): a
step is compared with its group's returns at its own time step wherever two episodes hold one,
so that no offset that depends on the time step alone enters its advantage.

When a rollout's returns tie wherever its baseline compares them (:func:`returns_tie`, with a
tolerance relative to the returns' scale), every advantage is zero; a tie at the best return the
run has seen (:func:`tie_at_best`) is a solved task, any other tie a stall that
:func:`novelty_rewards` can move out of.

Variants of step 4-5, each an option of :func:`group_advantages` (measured against the
default in the estimator study, ``benchmarks/estimator_study/``):

* ``leave_one_out``: the baseline of a step leaves out its own episode's return (RLOO),
  which removes the ``1/n`` shrinkage of the plain group mean (an unbiased baseline);
* ``min_bin_count``: a thin (group, bin), holding fewer returns than this, takes the
  baseline of the same bin pooled over every group of the rollout;
* ``per_bin_std``: divide each advantage by the standard deviation of its bin's returns
  (GRPO's normalisation);

and a state-dependent baseline that replaces the bins, :func:`knn_baselines`: the mean
return of the nearest steps of *other* episodes in observation-and-time space, cross-fitted
over folds of episodes so that a step's baseline never uses its own episode.

Nothing here knows about torch, gymnasium or SB3, so every function can be checked
against hand-computed examples.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: A user binning: ``f(observations, timesteps) -> bin ids``, vectorised over steps.
BinningFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

BINNINGS = ("none", "timestep", "state", "grid")

#: Baselines of :func:`advantages`: the binned group mean (the paper's) or the k-nearest-neighbour one.
BASELINES = ("group", "knn")

#: Credits of the group baseline: a step's own return (the paper's), or its episode's at its first visit to the bin.
CREDITS = ("step", "bin")


def episode_lengths(episode_ids: np.ndarray) -> np.ndarray:
    """
    Lengths of the contiguous episodes of a flat rollout.

    :param episode_ids: Episode id of each step, shape ``(n_steps,)``; each episode's steps are contiguous.
    :return: The length of each episode, in order of appearance.
    """
    episode_ids = np.asarray(episode_ids)
    if episode_ids.size == 0:
        return np.zeros(0, dtype=np.int64)
    boundaries = np.flatnonzero(episode_ids[1:] != episode_ids[:-1]) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [episode_ids.size]))
    return ends - starts


def discounted_returns(rewards: np.ndarray, episode_ids: np.ndarray, gamma: float) -> np.ndarray:
    """
    Discounted Monte Carlo return-to-go of every step, cut at the end of its episode.

    ``R_t = r_t + gamma * R_{t+1}`` within an episode and ``R_T = r_T`` at its last step.
    The loop runs over time steps only (vectorised over episodes).

    :param rewards: Reward of each step, shape ``(n_steps,)``.
    :param episode_ids: Episode id of each step, shape ``(n_steps,)``; episodes are contiguous.
    :param gamma: Discount factor in ``[0, 1]``.
    :return: Returns, shape ``(n_steps,)``, float64.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    lengths = episode_lengths(episode_ids)
    if rewards.shape != np.shape(episode_ids):
        raise ValueError(f"rewards {rewards.shape} and episode_ids {np.shape(episode_ids)} must have the same shape")
    if rewards.size == 0:
        return np.zeros(0, dtype=np.float64)
    n_episodes, max_len = lengths.size, int(lengths.max())
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    # Padded (episode, time) matrix; padding rewards are zero and come after the episode's end,
    # so they add nothing to the returns of real steps.
    offsets = np.arange(rewards.size) - np.repeat(starts, lengths)
    rows = np.repeat(np.arange(n_episodes), lengths)
    padded = np.zeros((n_episodes, max_len + 1), dtype=np.float64)
    padded[rows, offsets] = rewards
    for t in range(max_len - 1, -1, -1):
        padded[:, t] += gamma * padded[:, t + 1]
    return padded[rows, offsets]


def timesteps_in_episode(episode_ids: np.ndarray) -> np.ndarray:
    """
    Time step of every step within its episode (0 at the episode's first step).

    :param episode_ids: Episode id of each step; episodes are contiguous.
    :return: Time steps, shape ``(n_steps,)``, int64.
    """
    lengths = episode_lengths(episode_ids)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    return np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)


def timestep_bins(timesteps: np.ndarray, bin_width: int = 1) -> np.ndarray:
    """
    ``f(s, t) = t // bin_width``: a baseline per (window of) time step.

    :param timesteps: Time step of each step within its episode.
    :param bin_width: Number of consecutive time steps sharing a bin (>= 1).
    :return: Bin ids, int64.
    """
    if bin_width < 1:
        raise ValueError(f"bin_width must be >= 1, got {bin_width}")
    return np.asarray(timesteps, dtype=np.int64) // int(bin_width)


def state_bins(observations: np.ndarray) -> np.ndarray:
    """
    ``f(s, t) = s`` for Discrete observation spaces: a per-state Monte Carlo value.

    :param observations: Discrete observations, shape ``(n_steps,)`` or ``(n_steps, 1)``.
    :return: Bin ids, int64.
    """
    observations = np.asarray(observations)
    return observations.reshape(observations.shape[0], -1)[:, 0].astype(np.int64)


def grid_bins(observations: np.ndarray, bin_eps: float) -> np.ndarray:
    """
    ``f(s, t) = round(s / eps)``: continuous states rounded to a grid of width ``eps``.

    Each distinct grid cell gets its own integer id.

    :param observations: Observations, shape ``(n_steps, ...)``; flattened per step.
    :param bin_eps: Grid width (> 0), in the units of the observations the policy sees.
    :return: Bin ids, int64.
    """
    if not bin_eps > 0:
        raise ValueError(f"bin_eps must be > 0, got {bin_eps}")
    observations = np.asarray(observations, dtype=np.float64)
    if observations.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    cells = np.round(observations.reshape(observations.shape[0], -1) / bin_eps).astype(np.int64)
    _, ids = np.unique(cells, axis=0, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


def compute_bins(
    binning: str | BinningFn,
    observations: np.ndarray | dict[str, np.ndarray],
    timesteps: np.ndarray,
    bin_width: int = 1,
    bin_eps: float = 0.1,
) -> np.ndarray:
    """
    Bin id of every step for one of the binning families or a user callable.

    :param binning: ``"none"`` (one bin), ``"timestep"``, ``"state"``, ``"grid"`` or a callable
        ``f(observations, timesteps) -> int array of shape (n_steps,)``.
    :param observations: Observations of the steps (a dict of arrays for Dict spaces).
    :param timesteps: Time step of each step within its episode.
    :param bin_width: Width of the time-step bins.
    :param bin_eps: Width of the grid bins.
    :return: Bin ids, shape ``(n_steps,)``, int64.
    """
    n_steps = len(timesteps)
    if callable(binning):
        bins = np.asarray(binning(observations, timesteps))
        if bins.shape != (n_steps,):
            raise ValueError(
                f"binning callable returned an array of shape {bins.shape}, expected ({n_steps},): "
                "it must return one integer bin id per step, f(observations, timesteps) -> np.ndarray of shape (n_steps,)"
            )
        if not (np.issubdtype(bins.dtype, np.integer) or np.issubdtype(bins.dtype, np.bool_)):
            raise TypeError(
                f"binning callable returned dtype {bins.dtype}, expected integers: "
                "return integer bin ids (for example np.floor(x / width).astype(np.int64))"
            )
        return bins.astype(np.int64)
    if binning == "none":
        return np.zeros(n_steps, dtype=np.int64)
    if binning == "timestep":
        return timestep_bins(timesteps, bin_width)
    if isinstance(observations, dict):
        raise ValueError(f"binning={binning!r} needs array observations; for Dict observations pass a callable binning")
    if binning == "state":
        return state_bins(observations)
    if binning == "grid":
        return grid_bins(observations, bin_eps)
    raise ValueError(f"Unknown binning {binning!r}: use one of {BINNINGS} or a callable f(observations, timesteps)")


def first_visit_mask(episode_ids: np.ndarray, bin_ids: np.ndarray) -> np.ndarray:
    """
    Whether each step is its episode's first visit to its bin.

    :param episode_ids: Episode id of each step; episodes are contiguous and steps in time order.
    :param bin_ids: Bin id of each step.
    :return: Boolean mask, shape ``(n_steps,)``.
    """
    n_steps = len(bin_ids)
    if n_steps == 0:
        return np.zeros(0, dtype=bool)
    return _first_index(np.asarray(episode_ids, dtype=np.int64), np.asarray(bin_ids, dtype=np.int64)) == np.arange(n_steps)


class GroupAdvantages(NamedTuple):
    """Output of :func:`group_advantages`."""

    #: Advantage of every step.
    advantages: np.ndarray
    #: Baseline of every step: mean first-visit return of its (group, bin), or of the pooled bin.
    baselines: np.ndarray
    #: Number of first-visit returns in the (group, bin) of every step.
    bin_counts: np.ndarray
    #: Fraction of the (group, bin) pairs holding a single return.
    singleton_bin_fraction: float


class _BinStats(NamedTuple):
    """First-visit statistics of the bin of every step (see :func:`_bin_stats`)."""

    sums: np.ndarray
    squares: np.ndarray
    counts: np.ndarray
    singleton_fraction: float


def _bin_stats(keys: np.ndarray, first: np.ndarray, returns: np.ndarray) -> _BinStats:
    """
    Per-bin sums of the first-visit returns, of their squares, and their counts, gathered back to every step.

    :param keys: Rows of integer keys (one row per step) identifying the bins.
    :param first: First-visit mask.
    :param returns: Return of each step.
    :return: Sum, sum of squares and count of each step's bin (shape ``(n_steps,)`` each), and the
        fraction of the bins holding a single return.
    """
    _, index = np.unique(keys, axis=0, return_inverse=True)
    index = index.reshape(-1)
    n_keys = int(index.max()) + 1
    sums = np.bincount(index[first], weights=returns[first], minlength=n_keys)
    squares = np.bincount(index[first], weights=returns[first] ** 2, minlength=n_keys)
    counts = np.bincount(index[first], minlength=n_keys)
    return _BinStats(sums[index], squares[index], counts[index], float(np.mean(counts == 1)))


def _bin_baselines(
    returns: np.ndarray,
    group_ids: np.ndarray,
    episode_ids: np.ndarray,
    bin_ids: np.ndarray,
    leave_one_out: bool,
    min_bin_count: int | None,
    per_bin_std: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, _BinStats]:
    """
    Advantages, baselines and used bin counts of :func:`group_advantages` for one binning (no refinement).

    :return: Advantages, baselines, the count of returns behind each step's baseline (after pooling), and the
        statistics of the group bins.
    """
    entry = _first_index(episode_ids, bin_ids)
    first = entry == np.arange(entry.size)  # first_visit_mask, from the entries that leave_one_out needs too
    group_stats = _bin_stats(np.stack((group_ids, bin_ids), axis=1), first, returns)
    sums, squares, counts = group_stats.sums, group_stats.squares, group_stats.counts
    if min_bin_count is not None:
        pooled = _bin_stats(bin_ids[:, None], first, returns)
        thin = counts < min_bin_count
        sums = np.where(thin, pooled.sums, sums)
        squares = np.where(thin, pooled.squares, squares)
        counts = np.where(thin, pooled.counts, counts)
    if leave_one_out:
        # The episode's own first-visit return in the step's bin (a later visit shares it).
        own_return = returns[entry]
        others = counts - 1
        # With no other return in the bin the baseline is the step's own return: zero advantage.
        baselines = np.divide(sums - own_return, others, out=returns.copy(), where=others > 0)
    else:
        baselines = sums / counts
    advantages = returns - baselines
    # Exact zero where the step is the only return of its bin (no floating-point residue).
    advantages[(counts == 1) & first] = 0.0
    if per_bin_std:
        std = np.sqrt(np.maximum(squares / counts - (sums / counts) ** 2, 0.0))
        # A bin whose returns are all equal has no scale: its (revisit) advantages are set to zero.
        advantages = np.divide(advantages, std + 1e-8, out=np.zeros_like(advantages), where=std > 0)
    return advantages, baselines, counts, group_stats


def _first_index(episode_ids: np.ndarray, bin_ids: np.ndarray) -> np.ndarray:
    """
    Index of the first visit of each step's episode to its bin (a first visit is its own).

    :param episode_ids: Episode id of each step; episodes are contiguous and steps in time order.
    :param bin_ids: Bin id of each step.
    :return: Step indices, shape ``(n_steps,)``.
    """
    keys = np.stack((episode_ids, bin_ids), axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)]


def group_advantages(
    returns: np.ndarray,
    group_ids: np.ndarray,
    episode_ids: np.ndarray,
    bin_ids: np.ndarray,
    leave_one_out: bool = False,
    min_bin_count: int | None = None,
    per_bin_std: bool = False,
    timesteps: np.ndarray | None = None,
    credit: str = "step",
) -> GroupAdvantages:
    """
    GPG advantages: each step's return minus the mean first-visit return of its bin within its group.

    With ``timesteps`` (time-step bins wider than one step), a bin's later steps are not compared with
    the returns at the bin's first step, which differ from theirs by the rewards in between (an offset
    that depends on the time step only). A step is compared with the returns of its group at the *same*
    time step wherever at least two episodes hold one there (after ``min_bin_count`` pooling); a step
    that its episode alone reaches takes the advantage of its episode's first visit to the bin (its
    return there against the bin's mean), which is exactly zero for an episode alone in its bin.

    :param returns: Monte Carlo return of each step.
    :param group_ids: Group id of each step (bins are scoped to a group).
    :param episode_ids: Episode id of each step; episodes are contiguous.
    :param bin_ids: Bin id of each step.
    :param leave_one_out: Leave the step's own episode out of its baseline (RLOO): the baseline is the
        mean of the *other* episodes' first-visit returns in the bin; a step whose bin holds no other
        episode's return gets zero advantage.
    :param min_bin_count: If set (>= 2), a (group, bin) holding fewer first-visit returns than this
        takes its baseline (and, with ``per_bin_std``, its scale) from the same bin pooled over every
        group of the rollout. ``None`` keeps every baseline within its group.
    :param per_bin_std: Divide each advantage by the standard deviation of the first-visit returns of
        its bin (GRPO), plus ``1e-8``.
    :param timesteps: Time step of each step within its episode, to refine time-step bins wider than one
        step as described above; ``None``: no refinement (the paper's rule for every binning).
    :param credit: ``"step"``: each step's own return against its baseline (the paper's). ``"bin"``: every step
        takes the advantage of its episode's first visit to its bin, where the group's episodes are compared at
        the same point (with ``binning="none"``, each episode's return from its start against the group's mean,
        GRPO's outcome advantage); ``timesteps`` then changes nothing.
    :return: Advantages, baselines, bin counts and the singleton-bin fraction (of the group bins).
    """
    if credit not in CREDITS:
        raise ValueError(f"credit={credit!r} is unknown: use one of {CREDITS}")
    returns = np.asarray(returns, dtype=np.float64)
    n_steps = returns.size
    if n_steps == 0:
        empty = np.zeros(0, dtype=np.float64)
        return GroupAdvantages(empty, empty, np.zeros(0, dtype=np.int64), 0.0)
    if min_bin_count is not None and min_bin_count < 2:
        raise ValueError(f"min_bin_count must be None or an integer >= 2, got {min_bin_count}")
    group_ids = np.asarray(group_ids, dtype=np.int64)
    episode_ids = np.asarray(episode_ids, dtype=np.int64)
    bin_ids = np.asarray(bin_ids, dtype=np.int64)
    options = (leave_one_out, min_bin_count, per_bin_std)
    advantages, baselines, _, group_stats = _bin_baselines(returns, group_ids, episode_ids, bin_ids, *options)
    if credit == "bin":
        entry = _first_index(episode_ids, bin_ids)
        baselines = baselines[entry] + returns - returns[entry]
        advantages = advantages[entry]
    elif timesteps is not None:
        steps = np.asarray(timesteps, dtype=np.int64)
        step_advantages, step_baselines, step_counts, _ = _bin_baselines(returns, group_ids, episode_ids, steps, *options)
        # A thin step inherits its episode's advantage at its first visit to the bin, whose baseline is offset
        # from this step's by the episode's own rewards in between (so that baseline minus advantage stays R_t).
        entry = _first_index(episode_ids, bin_ids)
        thin = step_counts < 2
        advantages = np.where(thin, advantages[entry], step_advantages)
        baselines = np.where(thin, baselines[entry] + returns - returns[entry], step_baselines)
    return GroupAdvantages(advantages, baselines, group_stats.counts, group_stats.singleton_fraction)


def knn_features(
    observations: np.ndarray | dict[str, np.ndarray], timesteps: np.ndarray, time_weight: float = 1.0
) -> np.ndarray:
    """
    Features of the k-nearest-neighbour baseline: the flattened observation and the time step, standardised.

    Each column is divided by its standard deviation over the rollout (constant columns are left
    as they are), so that no unit dominates the distance; the time column is then multiplied by
    ``time_weight`` (0 drops it).

    :param observations: Observations of the steps, shape ``(n_steps, ...)`` (a dict of such arrays for
        Dict spaces, concatenated in key order).
    :param timesteps: Time step of each step within its episode.
    :param time_weight: Weight of the standardised time step in the distance.
    :return: Features, shape ``(n_steps, n_features)``, float64.
    """
    parts = [observations[key] for key in sorted(observations)] if isinstance(observations, dict) else [observations]
    n_steps = len(timesteps)
    columns = [np.asarray(part, dtype=np.float64).reshape(n_steps, -1) for part in parts]
    features = np.concatenate([*columns, np.asarray(timesteps, dtype=np.float64).reshape(n_steps, 1)], axis=1)
    scale = features.std(axis=0)
    features = features / np.where(scale > 0, scale, 1.0)
    features[:, -1] *= time_weight
    return features


def knn_baselines(
    features: np.ndarray, returns: np.ndarray, episode_ids: np.ndarray, n_neighbors: int = 16, n_folds: int = 2
) -> np.ndarray:
    """
    State-dependent, critic-free baseline: the mean return of the nearest steps of other episodes.

    Episodes are dealt into ``n_folds`` folds in order of appearance (episode ``i`` goes to fold
    ``i % n_folds``). The steps of each fold are looked up in a KD-tree (``scipy.spatial.cKDTree``)
    of the steps of the other folds, and their baseline is the mean return of their
    ``n_neighbors`` nearest neighbours there. A step's baseline therefore never depends on its own
    episode (cross-fitting), which keeps the policy gradient unbiased.

    :param features: Features of each step (see :func:`knn_features`), shape ``(n_steps, n_features)``.
    :param returns: Monte Carlo return of each step.
    :param episode_ids: Episode id of each step; episodes are contiguous.
    :param n_neighbors: Neighbours averaged per step (fewer if the other folds hold fewer steps).
    :param n_folds: Number of folds (>= 2, at most the number of episodes).
    :return: Baselines, shape ``(n_steps,)``, float64.
    """
    # scipy is imported here, where it is used, so that importing the estimator does not load it.
    from scipy.spatial import cKDTree

    returns = np.asarray(returns, dtype=np.float64)
    episode_ids = np.asarray(episode_ids)
    lengths = episode_lengths(episode_ids)
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    if not 2 <= n_folds <= max(2, lengths.size):
        raise ValueError(f"n_folds must be between 2 and the number of episodes ({lengths.size}), got {n_folds}")
    if lengths.size < 2:
        raise ValueError("knn_baselines needs at least two episodes (a step's baseline comes from other episodes)")
    folds = np.repeat(np.arange(lengths.size) % n_folds, lengths)
    baselines = np.zeros(returns.size, dtype=np.float64)
    for fold in range(n_folds):
        # Every fold holds an episode (2 <= n_folds <= episodes), and so does its complement.
        query = folds == fold
        reference = ~query
        k = min(n_neighbors, int(reference.sum()))
        _, index = cKDTree(features[reference]).query(features[query], k=k)
        baselines[query] = returns[reference][index.reshape(int(query.sum()), k)].mean(axis=1)
    return baselines


def tie_tolerance(returns: np.ndarray, rtol: float = 1e-6) -> float:
    """
    How far apart two returns of a rollout may be and still count as equal: ``rtol`` times the largest absolute return.

    Relative to the returns' own scale, so that returns of tiny rewards that differ are told apart, and equal sums
    that differ by rounding are not; returns that are all zero must be equal exactly.

    :param returns: Returns of the rollout.
    :param rtol: Relative tolerance.
    :return: The tolerance, >= 0.
    """
    returns = np.asarray(returns, dtype=np.float64)
    return float(rtol * np.max(np.abs(returns))) if returns.size else 0.0


def returns_tie(
    returns: np.ndarray,
    group_ids: np.ndarray,
    timesteps: np.ndarray,
    min_bin_count: int | None = None,
    rtol: float = 1e-6,
) -> bool:
    """
    Whether a rollout carries no signal: wherever a baseline compares episodes, their returns are equal at every time step.

    Then no baseline can tell the episodes apart, and with one bin per time step every advantage is zero: the policy
    gradient vanishes, as when every Acrobot or MountainCar episode runs into the time limit, or every CartPole
    episode reaches it. Returns are compared within the scope the configured baseline compares them in: within each
    group (pass the group ids), across the whole rollout (pass one id for every step, as for the ``"knn"`` baseline,
    which compares episodes of any group), and, with ``min_bin_count``, across the whole rollout at the time steps
    where a group holds fewer returns than that (where :func:`group_advantages` pools its groups).

    :param returns: Monte Carlo return of each step (of the env's own rewards: a ``VecNormalize`` rescaling
        makes equal returns differ slightly).
    :param group_ids: Group id of each step: the scope within which returns are compared.
    :param timesteps: Time step of each step within its episode.
    :param min_bin_count: ``min_bin_count`` of the group baseline, or ``None``.
    :param rtol: Returns within :func:`tie_tolerance` of each other count as equal (rounding).
    :return: True if no scope holds two different returns at one time step.
    """
    returns = np.asarray(returns, dtype=np.float64)
    if returns.size == 0:
        return True
    tolerance = tie_tolerance(returns, rtol)
    steps = np.asarray(timesteps, dtype=np.int64)
    group_keys = np.stack((np.asarray(group_ids, dtype=np.int64), steps), axis=1)
    spread, counts = _spread(group_keys, returns)
    if min_bin_count is not None:
        pooled_spread, _ = _spread(steps[:, None], returns)
        spread = np.where(counts < min_bin_count, pooled_spread, spread)
    return bool(np.all(spread <= tolerance))


def _spread(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Range (max - min) and count of the values sharing each step's key, gathered back to every step.

    :param keys: Rows of integer keys, one row per step.
    :param values: Value of each step.
    :return: Range and count of each step's key, shape ``(n_steps,)`` each.
    """
    _, index = np.unique(keys, axis=0, return_inverse=True)
    index = index.reshape(-1)
    n_keys = int(index.max()) + 1
    high = np.full(n_keys, -np.inf)
    low = np.full(n_keys, np.inf)
    np.maximum.at(high, index, values)
    np.minimum.at(low, index, values)
    return (high - low)[index], np.bincount(index, minlength=n_keys)[index]


def tie_at_best(start_returns: np.ndarray, return_range: tuple[float, float] | None, rtol: float = 1e-6) -> bool:
    """
    Whether a tied rollout ties at the best return the run has seen, after the run has seen worse: success, not a stall.

    A solved task ties at its ceiling (every CartPole episode reaching 500); exploring away from it would unlearn it.
    A run whose every return so far was the same (every MountainCar episode timing out) has shown no best to keep.

    :param start_returns: Return of each episode of the rollout from its first step.
    :param return_range: Lowest and highest episode return the run has seen, this rollout's included.
    :param rtol: Relative tolerance, as in :func:`tie_tolerance`.
    :return: True if every episode returned the best seen, within the tolerance, and the run has seen a lower return.
    """
    if return_range is None or np.size(start_returns) == 0:
        return False
    low, high = return_range
    tolerance = tie_tolerance(np.array([low, high]), rtol)
    return bool(high - low > tolerance and np.min(start_returns) >= high - tolerance)


def novelty_rewards(
    features: np.ndarray, episode_ids: np.ndarray, n_neighbors: int = 16, n_folds: int = 2, max_dims: int = 32
) -> np.ndarray:
    """
    Novelty of every step: ``log(1 + d)``, ``d`` the distance to its ``n_neighbors``-th nearest step of other episodes.

    A particle estimate of how rarely the rollout visits a step's state (as in state-entropy exploration:
    APT, RE3): an episode that goes where the others do not collects more of it. Episodes are dealt into
    folds as in :func:`knn_baselines`, so that a step is compared with other episodes only (its own
    neighbours in time would make every step look familiar). Features with more than ``max_dims``
    columns are first projected onto ``max_dims`` random directions (seed 0), which keeps distances
    approximately (Johnson-Lindenstrauss) and the KD-tree fast.

    :param features: Features of each step (see :func:`knn_features`), shape ``(n_steps, n_features)``.
    :param episode_ids: Episode id of each step; episodes are contiguous.
    :param n_neighbors: Which neighbour's distance (fewer if the other folds hold fewer steps).
    :param n_folds: Number of folds (>= 2, at most the number of episodes).
    :param max_dims: Largest number of feature columns used as they are.
    :return: Novelty rewards, shape ``(n_steps,)``, float64, >= 0.
    """
    from scipy.spatial import cKDTree

    features = np.asarray(features, dtype=np.float64)
    if features.shape[1] > max_dims:
        projection = np.random.default_rng(0).standard_normal((features.shape[1], max_dims)) / np.sqrt(max_dims)
        features = features @ projection
    lengths = episode_lengths(episode_ids)
    if lengths.size < 2:
        raise ValueError("novelty_rewards needs at least two episodes (a step is compared with other episodes)")
    n_folds = min(n_folds, lengths.size)
    folds = np.repeat(np.arange(lengths.size) % n_folds, lengths)
    distances = np.zeros(features.shape[0], dtype=np.float64)
    for fold in range(n_folds):
        query = folds == fold
        reference = ~query
        k = min(n_neighbors, int(reference.sum()))
        found, _ = cKDTree(features[reference]).query(features[query], k=k)
        distances[query] = found.reshape(int(query.sum()), k)[:, -1]
    return np.log1p(distances)


#: Options of each baseline (``baseline_kwargs`` of :func:`advantages`), with their defaults.
BASELINE_OPTIONS: dict[str, dict[str, object]] = {
    "group": {"leave_one_out": False, "min_bin_count": None, "per_bin_std": False, "credit": "step"},
    "knn": {"n_neighbors": 16, "n_folds": 2, "time_weight": 1.0},
}


def check_baseline(baseline: str, baseline_kwargs: dict[str, object] | None) -> None:
    """
    Refuse an unknown baseline, or options that it does not take.

    :param baseline: ``"group"`` or ``"knn"``.
    :param baseline_kwargs: Options of the baseline (see :data:`BASELINE_OPTIONS`), or ``None``.
    """
    if baseline not in BASELINE_OPTIONS:
        raise ValueError(f"baseline={baseline!r} is unknown: use one of {tuple(BASELINE_OPTIONS)}")
    options = dict(baseline_kwargs or {})
    unknown = set(options) - set(BASELINE_OPTIONS[baseline])
    if unknown:
        raise ValueError(
            f"baseline_kwargs {sorted(unknown)} do not apply to baseline={baseline!r}, "
            f"whose options are {BASELINE_OPTIONS[baseline]} (name: default)"
        )
    # Values that no rollout could use, refused now rather than at the first rollout.
    checks = {
        "min_bin_count": (lambda v: v is None or (_is_int(v) and v >= 2), "None or an integer >= 2"),
        "n_neighbors": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "n_folds": (lambda v: _is_int(v) and v >= 2, "an integer >= 2 (at most the episodes per rollout)"),
        "time_weight": (lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0"),
        "leave_one_out": (lambda v: isinstance(v, bool), "True or False"),
        "per_bin_std": (lambda v: isinstance(v, bool), "True or False"),
        "credit": (lambda v: v in CREDITS, f"one of {CREDITS}"),
    }
    for name, value in options.items():
        valid, expected = checks[name]
        if not valid(value):
            raise ValueError(f"baseline_kwargs[{name!r}] must be {expected}, got {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def advantages(
    returns: np.ndarray,
    group_ids: np.ndarray,
    episode_ids: np.ndarray,
    bin_ids: np.ndarray,
    observations: np.ndarray | dict[str, np.ndarray],
    timesteps: np.ndarray,
    baseline: str = "group",
    baseline_kwargs: dict[str, object] | None = None,
    refine_bins: bool = False,
) -> GroupAdvantages:
    """
    Advantages of a rollout with the chosen baseline: the binned group mean or the k-nearest-neighbour one.

    :param returns: Monte Carlo return of each step.
    :param group_ids: Group id of each step.
    :param episode_ids: Episode id of each step; episodes are contiguous.
    :param bin_ids: Bin id of each step (used by the ``"group"`` baseline).
    :param observations: Observations of the steps (used by the ``"knn"`` baseline).
    :param timesteps: Time step of each step within its episode (used by the ``"knn"`` baseline).
    :param baseline: ``"group"`` (:func:`group_advantages`) or ``"knn"`` (:func:`knn_baselines`).
    :param baseline_kwargs: Options of the baseline (see :data:`BASELINE_OPTIONS`).
    :param refine_bins: The bins are time-step bins wider than one step: compare each step with the returns at its
        own time step where it can (``timesteps`` argument of :func:`group_advantages`).
    :return: Advantages and baselines; for ``"knn"`` the bin counts are those of the group bins, for the record.
    """
    check_baseline(baseline, baseline_kwargs)
    options = {**BASELINE_OPTIONS[baseline], **(baseline_kwargs or {})}
    if baseline == "group":
        refinement = timesteps if refine_bins else None
        return group_advantages(returns, group_ids, episode_ids, bin_ids, **options, timesteps=refinement)  # type: ignore[arg-type]
    time_weight = float(options.pop("time_weight"))  # type: ignore[arg-type]
    knn = knn_baselines(knn_features(observations, timesteps, time_weight), returns, episode_ids, **options)  # type: ignore[arg-type]
    binned = group_advantages(returns, group_ids, episode_ids, bin_ids)
    return GroupAdvantages(np.asarray(returns, dtype=np.float64) - knn, knn, binned.bin_counts, binned.singleton_bin_fraction)
