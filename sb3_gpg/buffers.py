"""Grouped rollout buffer: whole episodes, group Monte Carlo advantages, shuffled minibatches."""

from collections.abc import Generator
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import TensorDict

from sb3_gpg import estimator
from sb3_gpg.estimator import BinningFn


class GroupRolloutBufferSamples(NamedTuple):
    """A minibatch of a :class:`GroupRolloutBuffer` (SB3's ``RolloutBufferSamples`` without values)."""

    observations: th.Tensor | TensorDict
    actions: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor


class GroupRolloutBuffer:
    """
    Rollout buffer for GPG: variable-size, episode-ordered, with group Monte Carlo advantages.

    During a rollout the algorithm adds one vectorised step at a time, with the episode each
    environment is playing (or -1 when it sits idle, in which case nothing is stored).
    :meth:`compute_returns_and_advantage`, given the group of each episode (from
    :class:`~sb3_gpg.rollout.GroupRollout`), then orders the steps by episode and fills, one row
    per stored step, ``observations``, ``actions``, ``log_probs``, ``rewards``, ``episode_ids``,
    ``group_ids``, ``timesteps``, ``bin_ids``, ``returns``, ``baselines`` and ``advantages``
    (flat arrays of length :meth:`size`, unlike SB3's ``(n_steps, n_envs)`` layout, since
    each rollout holds a different number of steps). A callback can read them in
    ``_on_rollout_end``. :meth:`get` yields shuffled minibatches as SB3's ``RolloutBuffer.get``.

    :param observation_space: Observation space
    :param action_space: Action space
    :param device: PyTorch device of the minibatches
    :param gamma: Discount factor
    :param binning: Binning family (``"none"``, ``"timestep"``, ``"state"``, ``"grid"``) or a callable
    :param bin_width: Width of the time-step bins
    :param bin_eps: Width of the grid bins
    :param baseline: ``"group"`` (binned group mean) or ``"knn"`` (see :func:`sb3_gpg.estimator.advantages`)
    :param baseline_kwargs: Options of the baseline (:data:`sb3_gpg.estimator.BASELINE_OPTIONS`)
    :param explore_ties: When no group of the rollout has any spread of (the env's own) returns, so that every
        advantage is zero, take the advantages from novelty returns instead (:func:`sb3_gpg.estimator.novelty_rewards`),
        unless every episode tied at the best return the run has seen (a solved task)
    """

    observations: np.ndarray | dict[str, np.ndarray]
    actions: np.ndarray
    log_probs: np.ndarray
    rewards: np.ndarray
    episode_ids: np.ndarray
    group_ids: np.ndarray
    timesteps: np.ndarray
    bin_ids: np.ndarray
    returns: np.ndarray
    baselines: np.ndarray
    advantages: np.ndarray
    singleton_bin_fraction: float
    #: Whether the last rollout's returns tied everywhere (its advantages then come from novelty, if explore_ties).
    tied: bool
    #: Whether they tied at the best episode return the run has seen, after worse ones: success, no novelty step.
    tied_at_best: bool
    #: Lowest and highest episode return (env's own rewards, discounted, from the first step) seen so far.
    return_range: tuple[float, float] | None

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "cpu",
        gamma: float = 0.99,
        binning: str | BinningFn = "timestep",
        bin_width: int = 1,
        bin_eps: float = 0.1,
        baseline: str = "group",
        baseline_kwargs: dict[str, Any] | None = None,
        explore_ties: bool = True,
    ) -> None:
        estimator.check_baseline(baseline, baseline_kwargs)
        self.explore_ties = explore_ties
        self.baseline = baseline
        self.baseline_kwargs = baseline_kwargs
        self.observation_space = observation_space
        self.action_space = action_space
        self.device = th.device(device)
        self.gamma = gamma
        self.binning = binning
        self.bin_width = bin_width
        self.bin_eps = bin_eps
        self.reset()

    def reset(self) -> None:
        """Drop every stored step and start a new rollout."""
        self._obs_chunks: list[np.ndarray | dict[str, np.ndarray]] = []
        self._action_chunks: list[np.ndarray] = []
        self._log_prob_chunks: list[np.ndarray] = []
        self._reward_chunks: list[np.ndarray] = []
        self._raw_reward_chunks: list[np.ndarray] = []
        self._episode_chunks: list[np.ndarray] = []
        self.full = False
        self._tensors: dict[str, th.Tensor | TensorDict] | None = None
        self._size = 0

    def size(self) -> int:
        """
        :return: Number of stored steps.
        """
        return self._size

    def add(
        self,
        obs: np.ndarray | dict[str, np.ndarray],
        actions: np.ndarray,
        log_probs: th.Tensor | np.ndarray,
        rewards: np.ndarray,
        episode_ids: np.ndarray,
        raw_rewards: np.ndarray | None = None,
    ) -> None:
        """
        Store one vectorised step for the environments that play an episode of the rollout.

        :param obs: Observations seen before acting, one per environment
        :param actions: Actions taken (as sampled by the policy)
        :param log_probs: Log probabilities of the actions
        :param rewards: Rewards received
        :param episode_ids: Episode played by each environment, -1 for an idle one (not stored)
        :param raw_rewards: The env's own rewards, where ``rewards`` were rescaled (``VecNormalize``); they only decide
            whether the rollout's returns tie. ``None``: ``rewards``.
        """
        active = np.asarray(episode_ids) >= 0
        if not active.any():
            return
        if isinstance(log_probs, th.Tensor):
            log_probs = log_probs.detach().cpu().numpy()
        if isinstance(obs, dict):
            self._obs_chunks.append({key: np.array(value[active]) for key, value in obs.items()})
        else:
            self._obs_chunks.append(np.array(obs[active]))
        self._action_chunks.append(np.array(actions[active]))
        self._log_prob_chunks.append(np.asarray(log_probs, dtype=np.float32).reshape(-1)[active])
        self._reward_chunks.append(np.asarray(rewards, dtype=np.float32).reshape(-1)[active])
        raw = rewards if raw_rewards is None else raw_rewards
        self._raw_reward_chunks.append(np.asarray(raw, dtype=np.float32).reshape(-1)[active])
        self._episode_chunks.append(np.asarray(episode_ids, dtype=np.int64)[active])
        self._size += int(active.sum())

    @property
    def _refine_bins(self) -> bool:
        # Time-step bins wider than one step compare each step at its own time step where they can (see estimator).
        return self.binning == "timestep" and self.bin_width > 1

    def _judge_ties(self, raw_returns: np.ndarray, return_range: tuple[float, float] | None) -> None:
        """
        Set :attr:`tied`, :attr:`tied_at_best` and :attr:`return_range` from the rollout's returns of the env's own rewards.

        :param raw_returns: Returns of the env's own rewards, one per stored step.
        :param return_range: Lowest and highest episode return seen before this rollout, or ``None``.
        """
        min_bin_count = (self.baseline_kwargs or {}).get("min_bin_count") if self.baseline == "group" else None
        # The knn baseline compares episodes of every group: so does the tie test.
        scope = self.group_ids if self.baseline == "group" else np.zeros_like(self.group_ids)
        self.tied = estimator.returns_tie(raw_returns, scope, self.timesteps, min_bin_count)
        start_returns = raw_returns[self.timesteps == 0]
        low, high = float(start_returns.min()), float(start_returns.max())
        if return_range is not None:
            low, high = min(low, return_range[0]), max(high, return_range[1])
        self.return_range = (low, high)
        self.tied_at_best = self.tied and estimator.tie_at_best(start_returns, self.return_range)

    def compute_returns_and_advantage(
        self, episode_groups: np.ndarray, return_range: tuple[float, float] | None = None, train_steps: int | None = None
    ) -> None:
        """
        Order the stored steps by episode and compute returns, bins, baselines and advantages.

        The episodes must be complete: returns are Monte Carlo, cut at each episode's end.

        :param episode_groups: Group of each episode, indexed by episode id.
        :param return_range: Lowest and highest episode return (of the env's own rewards) that the run saw before this
            rollout, or ``None`` for the first; with this rollout's, it decides whether a tie is at the best return seen.
            The updated range is left in :attr:`return_range`.
        :param train_steps: Keep only each episode's first ``train_steps`` steps for training (the later ones lengthen
            their returns; branched groups, :mod:`sb3_gpg.branching`). ``None``: keep every step.
        """
        if self._size == 0:
            raise RuntimeError("The rollout buffer is empty: no episode step was stored")
        episode_ids = np.concatenate(self._episode_chunks)
        # A stable sort keeps each episode's steps in time order.
        order = np.argsort(episode_ids, kind="stable")
        self.episode_ids = episode_ids[order]
        if isinstance(self._obs_chunks[0], dict):
            keys = self._obs_chunks[0].keys()
            self.observations = {
                key: np.concatenate([chunk[key] for chunk in self._obs_chunks])[order]
                for key in keys  # type: ignore[index]
            }
        else:
            self.observations = np.concatenate(self._obs_chunks)[order]  # type: ignore[arg-type]
        self.actions = np.concatenate(self._action_chunks)[order]
        self.log_probs = np.concatenate(self._log_prob_chunks)[order]
        self.rewards = np.concatenate(self._reward_chunks)[order]
        raw_rewards = np.concatenate(self._raw_reward_chunks)[order]
        self._obs_chunks, self._action_chunks, self._log_prob_chunks = [], [], []
        self._reward_chunks, self._raw_reward_chunks, self._episode_chunks = [], [], []

        self.group_ids = np.asarray(episode_groups, dtype=np.int64)[self.episode_ids]
        self.timesteps = estimator.timesteps_in_episode(self.episode_ids)
        self.returns = estimator.discounted_returns(self.rewards, self.episode_ids, self.gamma).astype(np.float32)
        self.bin_ids = estimator.compute_bins(self.binning, self.observations, self.timesteps, self.bin_width, self.bin_eps)
        result = estimator.advantages(
            self.returns,
            self.group_ids,
            self.episode_ids,
            self.bin_ids,
            self.observations,
            self.timesteps,
            self.baseline,
            self.baseline_kwargs,
            refine_bins=self._refine_bins,
        )
        raw_returns = estimator.discounted_returns(raw_rewards, self.episode_ids, self.gamma)
        self._judge_ties(raw_returns, return_range)
        if self.tied and not self.tied_at_best and self.explore_ties and self.episode_ids[-1] != self.episode_ids[0]:
            # No signal (and two episodes to compare): every advantage would be zero and the policy would not move. The
            # advantages of novelty returns (same groups and bins) favour the episodes that went where the others did
            # not, until returns differ. Not where the tie is at the best return seen: that is a solved task.
            features = estimator.knn_features(self.observations, self.timesteps, time_weight=0.0)
            novelty = estimator.novelty_rewards(features, self.episode_ids)
            novelty_returns = estimator.discounted_returns(novelty, self.episode_ids, self.gamma)
            per_bin_std = bool((self.baseline_kwargs or {}).get("per_bin_std", False)) and self.baseline == "group"
            result = estimator.group_advantages(
                novelty_returns,
                self.group_ids,
                self.episode_ids,
                self.bin_ids,
                per_bin_std=per_bin_std,
                timesteps=self.timesteps if self._refine_bins else None,
            )
        self.advantages = result.advantages.astype(np.float32)
        self.baselines = result.baselines.astype(np.float32)
        self.singleton_bin_fraction = result.singleton_bin_fraction
        if train_steps is not None:
            self._keep(self.timesteps < train_steps)
        self.full = True

    def _keep(self, mask: np.ndarray) -> None:
        # Keep the rows of `mask`: the others only lengthened the returns of the kept ones.
        names = ("actions", "log_probs", "rewards", "episode_ids", "group_ids", "timesteps", "bin_ids", "returns")
        for name in (*names, "baselines", "advantages"):
            setattr(self, name, getattr(self, name)[mask])
        if isinstance(self.observations, dict):
            self.observations = {key: value[mask] for key, value in self.observations.items()}
        else:
            self.observations = self.observations[mask]
        self._size = int(mask.sum())

    def _to_torch(self, array: np.ndarray) -> th.Tensor:
        return th.as_tensor(array, device=self.device)

    def get(self, batch_size: int | None = None) -> Generator[GroupRolloutBufferSamples, None, None]:
        """
        Shuffled minibatches over the whole rollout, as SB3's ``RolloutBuffer.get``.

        :param batch_size: Minibatch size; ``None`` or a size above the rollout's yields the whole rollout
            as one minibatch. The last minibatch may be smaller.
        :return: Generator of minibatches.
        """
        if not self.full:
            raise RuntimeError("compute_returns_and_advantage() must be called before get()")
        if self._tensors is None:
            actions = self.actions
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1)
            observations: th.Tensor | TensorDict
            if isinstance(self.observations, dict):
                observations = {key: self._to_torch(value) for key, value in self.observations.items()}
            else:
                observations = self._to_torch(self.observations)
            self._tensors = {
                "observations": observations,
                "actions": self._to_torch(actions),
                "old_log_prob": self._to_torch(self.log_probs),
                "advantages": self._to_torch(self.advantages),
                "returns": self._to_torch(self.returns),
            }
        n_samples = self._size
        if batch_size is None or batch_size > n_samples:
            batch_size = n_samples
        indices = th.as_tensor(np.random.permutation(n_samples), device=self.device)
        tensors = self._tensors
        for start in range(0, n_samples, batch_size):
            idx = indices[start : start + batch_size]
            obs = tensors["observations"]
            batch_obs = {key: value[idx] for key, value in obs.items()} if isinstance(obs, dict) else obs[idx]
            yield GroupRolloutBufferSamples(
                observations=batch_obs,
                actions=tensors["actions"][idx],  # type: ignore[index]
                old_log_prob=tensors["old_log_prob"][idx],  # type: ignore[index]
                advantages=tensors["advantages"][idx],  # type: ignore[index]
                returns=tensors["returns"][idx],  # type: ignore[index]
            )
