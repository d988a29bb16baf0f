"""Group Policy Gradient (GPG): PPO's clipped update with critic-free, group Monte Carlo advantages."""

import io
import math
import pathlib
import warnings
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv, unwrap_vec_normalize

from sb3_gpg import safety
from sb3_gpg.branching import BranchRollout, Chain, check_restorable
from sb3_gpg.buffers import GroupRolloutBuffer
from sb3_gpg.estimator import BinningFn
from sb3_gpg.policies import CnnPolicy, GPGPolicy, MlpPolicy, MultiInputPolicy
from sb3_gpg.rollout import GroupRollout, add_group_reset_to_vec_env, configure_envs
from sb3_gpg.safety import check_positive_int

SelfGPG = TypeVar("SelfGPG", bound="GPG")


class GPG(OnPolicyAlgorithm):
    """
    Group Policy Gradient (GPG): PPO without a critic.

    Each rollout collects ``n_groups`` groups of ``group_size`` whole episodes; the episodes of a
    group start from the same initial state (same reset seed). Every step's advantage is its
    discounted Monte Carlo return minus the mean return of its bin ``f(s, t)`` within its group,
    over the first visits of the group's episodes to that bin. The policy is then updated with
    PPO's clipped surrogate objective. There is no value network, no value loss, no ``vf_coef``
    and no ``gae_lambda``: PPO's keyword arguments that GPG does not take get an error saying what
    GPG uses instead. The envs must honour ``reset(seed=...)`` (checked on the first rollout).

    Paper: J. Chen, Z. Zhang, H. Zhong, R. Antonova, "Group Policy Gradient", arXiv 2510.03679 (2025).

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0;
        it stays at 0 when the last rollout, which ends on whole episodes, runs past ``total_timesteps``)
    :param group_size: Number of episodes per group, all started from the same state (>= 2). Larger groups give a
        less noisy baseline but fewer distinct start states per rollout. 8 is a good default; 4 to 32 are reasonable.
    :param n_groups: Number of groups per rollout; a rollout holds ``n_groups * group_size`` episodes,
        at least ``n_envs``. ``None`` gives each env about four episodes per rollout (less idle tail).
    :param binning: The binning function ``f(s, t)``: ``"timestep"`` (one baseline per time step, the
        default and the best general choice), ``"none"`` (one bin per group: GRPO / REINFORCE++ style),
        ``"state"`` (Discrete observation spaces: a per-state value), ``"grid"`` (observations rounded to
        a grid of width ``bin_eps``) or a callable ``f(observations, timesteps) -> int array (n_steps,)``.
        Too fine a binning leaves one return per bin (zero advantage); too coarse mixes unlike states.
    :param bin_width: Time steps per bin with ``binning="timestep"``; raise it (e.g. 5-20) for long,
        variable-length episodes whose late time steps are visited by few episodes of a group.
    :param bin_eps: Grid width with ``binning="grid"``, in the units the policy sees (normalized under ``VecNormalize``)
    :param baseline: ``"group"``: the mean first-visit return of the step's bin in its group (the paper's); ``"knn"``:
        the mean return of the nearest steps of *other* episodes in observation-and-time space (cross-fitted; no bins)
    :param baseline_kwargs: Options: ``leave_one_out``, ``min_bin_count`` (thin bins pool the rollout's groups),
        ``per_bin_std`` (GRPO) and ``credit`` (``"step"``, or ``"bin"``: each step takes its episode's advantage at
        its first visit to the bin) for ``"group"``; ``n_neighbors``, ``n_folds``, ``time_weight`` for ``"knn"``
        (see the estimator)
    :param explore_ties: When the returns of every group of a rollout tie (no spread within any bin: every advantage
        would be zero, as when every episode fails alike on a sparse-reward task), take the rollout's advantages from
        novelty returns instead: each step's reward is ``log(1 + d)``, ``d`` its distance to the nearest states of other
        episodes (see :func:`sb3_gpg.estimator.novelty_rewards`), so that the policy moves towards what the others did
        not do until returns differ. A rollout with any spread is unchanged, and so is one whose episodes all tie at the
        best return the run has seen after worse ones (a solved task, as CartPole at 500: there the update leaves the
        policy as it is). Logged as ``gpg/returns_tied`` and ``gpg/tied_at_best``.
        Keep it on unless tied returns are what the task should learn from: on MountainCar-v0 (ten tuning seeds) no
        run ended at the floor with it and eight did without; where returns never tie it changes nothing.
    :param max_episode_steps: Optional cap on episode length. Episodes also end at termination and at the
        env's time limit; truncated episodes are treated as finished (finite-horizon returns, no bootstrap).
    :param branch_horizon: ``None`` (default): every group starts from a reset, and its members play whole episodes.
        An integer ``H``: groups also start from states the policy visits (branched groups, see :ref:`rollout`): a
        trunk episode is snapshotted every ``branch_interval`` steps, and ``group_size`` members start from each
        snapshot and run ``H`` steps, so that members compare their actions from one state. Needs an env whose state
        GPG can restore (MuJoCo, classic control, or any env with seeded, deterministic transitions by replay). About
        ``2 / (1 - gamma)`` to ``3 / (1 - gamma)`` is a good start.
    :param branch_interval: Trunk steps between branch points (``1 <= branch_interval <= branch_horizon``; ``None``:
        ``branch_horizon // 2``). Each member is trained on its first ``branch_interval`` steps; its later steps only
        lengthen their returns, so that every trained step looks ``branch_horizon - branch_interval`` steps ahead.
    :param batch_size: Minibatch size. A rollout smaller than this is used as a single minibatch.
    :param n_epochs: Number of epochs when optimizing the surrogate loss
    :param gamma: Discount factor
    :param clip_range: Clipping parameter, it can be a function of the current progress remaining (from 1 to 0).
    :param normalize_advantage: Whether to normalize the advantages (per minibatch, as PPO)
    :param ent_coef: Entropy coefficient for the loss calculation
    :param max_grad_norm: The maximum value for the gradient clipping
    :param use_sde: Whether to use generalized State Dependent Exploration (gSDE) instead of action noise exploration
    :param sde_sample_freq: Sample a new noise matrix every n steps when using gSDE (-1: only at the rollout's start)
    :param target_kl: Limit the KL divergence between updates (early stop of the epochs), as PPO; None: no limit
    :param stats_window_size: Number of episodes over which the logged success rate, length and reward are averaged
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation. See :ref:`gpg_policies`
    :param verbose: Verbosity level: 0 for no output, 1 for info messages, 2 for debug messages
    :param seed: Seed for the pseudo random generators (also draws the groups' reset seeds)
    :param device: Device (cpu, cuda, ...) on which the code should be run; auto: the GPU if possible
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    :param ppo_kwargs: Refused with an error that says what GPG uses instead (PPO's ``n_steps``, ``gae_lambda``...)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: GPGPolicy  # type: ignore[assignment]
    rollout_buffer: GroupRolloutBuffer  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[GPGPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        group_size: int = 8,
        n_groups: int | None = None,
        binning: str | BinningFn = "timestep",
        bin_width: int = 1,
        bin_eps: float = 0.1,
        baseline: str = "group",
        baseline_kwargs: dict[str, Any] | None = None,
        explore_ties: bool = True,
        max_episode_steps: int | None = None,
        branch_horizon: int | None = None,
        branch_interval: int | None = None,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        clip_range: float | Schedule = 0.2,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        target_kl: float | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        **ppo_kwargs: Any,
    ):
        # Validate before building anything, so that a typo or a PPO config fails fast with a clear message.
        safety.refuse_ppo_kwargs(ppo_kwargs)
        self.group_size = check_positive_int("group_size", group_size)
        self.n_groups = None if n_groups is None else check_positive_int("n_groups", n_groups)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.n_epochs = check_positive_int("n_epochs", n_epochs)
        self.bin_width = check_positive_int("bin_width", bin_width)
        self.max_episode_steps = (
            None if max_episode_steps is None else check_positive_int("max_episode_steps", max_episode_steps)
        )
        self.branch_horizon, self.branch_interval = safety.check_branching(branch_horizon, branch_interval)
        safety.check_group_args(group_size, binning, bin_eps, baseline, baseline_kwargs, normalize_advantage)
        self.bin_eps = float(bin_eps)
        self.binning = binning
        self.baseline, self.baseline_kwargs = baseline, baseline_kwargs
        self.explore_ties = bool(explore_ties)
        self.clip_range = clip_range
        self.normalize_advantage = normalize_advantage
        self.target_kl = target_kl

        # OnPolicyAlgorithm's learn() and dump_logs() are what GPG inherits; of the critic's and the fixed
        # rollout's parameters that its __init__ stores, only n_steps is read afterwards (learn() passes it to
        # collect_rollouts as n_rollout_steps, which GPG ignores); its _setup_model, the only reader of the
        # others, is replaced below. The values given say what GPG does: no fixed rollout length (0), plain
        # Monte Carlo returns (GAE's lambda = 1) and no value loss (0). _excluded_save_params keeps them out of
        # saved models, which then hold no critic parameter.
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=0,
            gamma=gamma,
            gae_lambda=1.0,
            ent_coef=ent_coef,
            vf_coef=0.0,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            device=device,
            seed=seed,
            _init_setup_model=False,
            supported_action_spaces=None,  # checked below, with an error that says what is supported
        )
        # The groups' reset seeds come from their own seeded generator. Created here, not in _setup_model, which
        # load() runs after restoring the saved attributes: a loaded model goes on drawing where it was saved.
        self._group_seed_rng = np.random.default_rng(self.seed)
        self._starts_checked = False  # the envs' start states are checked on the first rollout (per env)
        self._zero_advantages_reported = False
        # Lowest and highest episode return of the env's own rewards seen so far (saved: a loaded model that keeps
        # training still knows the best return its run has seen, where ties mean success).
        self._return_range: tuple[float, float] | None = None
        # Branched groups: the chains whose next branch point the last rollout reached (snapshots of this env).
        self._chains: list[Chain] = []
        # At load time (env=None, _init_setup_model=False) the spaces are set later, from the file.
        if getattr(self, "observation_space", None) is not None:
            safety.check_spaces(self.observation_space, self.action_space, self.binning)
        if _init_setup_model:
            self._setup_model()

    @property
    def episodes_per_rollout(self) -> int:
        """Number of episodes collected per rollout (``n_groups * group_size``)."""
        return self._n_groups() * self.group_size

    def _n_groups(self) -> int:
        if self.n_groups is not None:
            return self.n_groups
        if self.branch_horizon is not None:
            # Branched groups: ten members per env, so that the rollout's idle tail (at most branch_horizon steps in
            # each env) stays a small share of it, and at least 2048 steps per rollout, as PPO's default.
            return max(
                math.ceil(10 * self.n_envs / self.group_size), math.ceil(2048 / (self.group_size * self.branch_horizon))
            )
        # n_groups=None: about four episodes per env and rollout, so that only the rollout's tail is idle
        return max(1, math.ceil(4 * self.n_envs / self.group_size))

    def _check_n_envs(self) -> None:
        if self.n_groups is not None and self.n_groups * self.group_size < self.n_envs:
            raise ValueError(
                f"n_groups * group_size = {self.n_groups} * {self.group_size} = {self.n_groups * self.group_size} episodes "
                f"per rollout is fewer than n_envs={self.n_envs}: some envs would sit idle for the whole rollout. "
                f"Use n_groups >= {math.ceil(self.n_envs / self.group_size)}, a larger group_size, or n_groups=None."
            )

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self._check_n_envs()
        self.rollout_buffer = GroupRolloutBuffer(
            self.observation_space,
            self.action_space,
            device=self.device,
            gamma=self.gamma,
            binning=self.binning,
            bin_width=self.bin_width,
            bin_eps=self.bin_eps,
            baseline=self.baseline,
            baseline_kwargs=self.baseline_kwargs,
            explore_ties=self.explore_ties,
        )
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, use_sde=self.use_sde, **self.policy_kwargs
        )
        self.policy = self.policy.to(self.device)
        self._maybe_recommend_cpu("GPGPolicy")
        self.clip_range = FloatSchedule(self.clip_range)
        if self.env is not None:
            self._configure_envs(self.env)

    def _configure_envs(self, env: VecEnv) -> None:
        # The envs' step cap and time limit; what branching needs of them; a missing time limit said up front.
        self._episode_step_limit = configure_envs(env, self.max_episode_steps)
        if self.branch_horizon is not None:
            check_restorable(env)
        elif self._episode_step_limit is None:
            warnings.warn(
                "The env declares no time limit (no TimeLimit wrapper, no spec.max_episode_steps) and max_episode_steps "
                "is not set. GPG trains on whole episodes: if the env ends its episodes by itself, all is well; an "
                f"episode that never ends stops training with an error after {safety.RUNAWAY_EPISODE_STEPS:,} steps. "
                "Set max_episode_steps=... or wrap the env in gymnasium.wrappers.TimeLimit to bound them.",
                stacklevel=3,
            )

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """
        SB3's wrapping, plus a :class:`~sb3_gpg.wrappers.GroupResetWrapper` in every sub-environment.

        :param env: Environment
        :param verbose: Verbosity level
        :param monitor_wrapper: Whether to wrap the env in a ``Monitor`` when possible.
        :return: The wrapped vectorized environment.
        """
        return add_group_reset_to_vec_env(BaseAlgorithm._wrap_env(env, verbose, monitor_wrapper))

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        # SB3's checks, then GPG's: enough episodes for n_envs, the envs' time limit, and their start states anew.
        super().set_env(env, force_reset)
        self._check_n_envs()
        self._configure_envs(self.env)  # type: ignore[arg-type]
        self._starts_checked = False
        self._chains = []  # snapshots of the previous env

    def collect_rollouts(  # type: ignore[override]
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: GroupRolloutBuffer,
        n_rollout_steps: int = 0,
    ) -> bool:
        """
        Collect ``n_groups`` groups of ``group_size`` whole episodes and compute their advantages.

        A :class:`~sb3_gpg.rollout.GroupRollout` decides which env plays which episode of which group and arms
        the envs' resets. Envs with nothing left to play keep stepping until the rollout's last episode ends
        ("idle" steps, counted in ``num_timesteps`` and logged as ``rollout/idle_fraction``).

        :param env: The training environment
        :param callback: Callback that will be called at each step (and at the beginning and end of the rollout)
        :param rollout_buffer: Buffer to fill with rollouts
        :param n_rollout_steps: Unused (SB3's fixed rollout length); GPG collects whole episodes.
        :return: True if the rollout completed, False if a callback stopped it.
        """
        self.policy.set_training_mode(False)
        # The env's own rewards decide whether the rollout's returns tie (VecNormalize rescales them step by step).
        vec_normalize = unwrap_vec_normalize(env)
        rollout: GroupRollout | BranchRollout
        if self.branch_horizon is None:
            group_seeds = self._group_seed_rng.integers(0, 2**31 - 1, size=self._n_groups())
            rollout = GroupRollout(
                env, group_seeds, self.group_size, self._episode_step_limit, check_starts=not self._starts_checked
            )
        else:
            rollout = BranchRollout(
                env,
                self._chains,
                lambda: self._group_seed_rng.integers(0, 2**31 - 1),
                self.group_size,
                self._n_groups(),
                self.branch_horizon,
                self.branch_interval,  # type: ignore[arg-type]
            )
        rollout_buffer.reset()
        self._last_obs = rollout.reset()  # every env starts an episode of the rollout
        self._last_episode_starts = np.ones((env.num_envs,), dtype=bool)

        if self.use_sde:
            self.policy.reset_noise(env.num_envs)
        callback.on_rollout_start()

        n_steps = 0
        while not rollout.done:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                # Sample a new noise matrix
                self.policy.reset_noise(env.num_envs)

            with th.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                actions, log_probs = self.policy(obs_tensor)
            actions = actions.cpu().numpy()
            # Rescale and perform action
            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                if self.policy.squash_output:
                    clipped_actions = self.policy.unscale_action(clipped_actions)
                else:
                    clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)

            new_obs, rewards, dones, infos = env.step(clipped_actions)
            self.num_timesteps += env.num_envs
            n_steps += 1

            callback.update_locals(locals())
            if not callback.on_step():
                return False

            safety.check_finite_step(rewards, new_obs, rollout.episodes >= 0, n_steps)
            raw_rewards = None if vec_normalize is None else vec_normalize.get_original_reward()
            rollout_buffer.add(self._last_obs, actions, log_probs, rewards, rollout.episodes, raw_rewards)  # type: ignore[arg-type]
            # The envs that are done have reset into their next episode (or branch). Only the rollout's episodes enter
            # the episode statistics: not the idle envs' extra ones, and with branching the trunks', not the members'.
            if isinstance(rollout, BranchRollout):
                ended = len(rollout.episode_infos)
                rollout.step(dones, rewards if raw_rewards is None else raw_rewards)
                self._update_info_buffer(rollout.episode_infos[ended:])
            else:
                finished = rollout.step(dones)
                self._update_info_buffer([infos[i] for i in finished], dones[finished])
            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones

        if isinstance(rollout, BranchRollout):
            self._chains = rollout.chains_to_continue()
        else:
            rollout.check_start_states()
            self._starts_checked = True
        rollout_buffer.compute_returns_and_advantage(rollout.episode_groups, self._return_range, self.branch_interval)
        self._return_range = rollout_buffer.return_range
        self._log_rollout(rollout)

        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _log_rollout(self, rollout: "GroupRollout | BranchRollout") -> None:
        advantages = self.rollout_buffer.advantages
        self.logger.record("rollout/idle_fraction", rollout.idle_fraction)
        if isinstance(rollout, BranchRollout):
            self.logger.record("gpg/branch_groups", len(rollout.groups))
            self.logger.record("gpg/branch_groups_from_snapshots", sum(group.head is not None for group in rollout.groups))
            self.logger.record("gpg/branch_replayed_steps", rollout.take_replayed_steps())
            self.logger.record("gpg/branch_trained_fraction", self.rollout_buffer.size() / max(1, rollout.stored_steps))
        self.logger.record("gpg/episodes_per_rollout", rollout.n_episodes)
        self.logger.record("gpg/rollout_steps", self.rollout_buffer.size())
        self.logger.record("gpg/advantage_std", float(np.std(advantages)))
        self.logger.record("gpg/zero_advantage_fraction", float(np.mean(advantages == 0.0)))
        self.logger.record("gpg/singleton_bin_fraction", self.rollout_buffer.singleton_bin_fraction)
        self.logger.record("gpg/returns_tied", float(self.rollout_buffer.tied))
        self.logger.record("gpg/tied_at_best", float(self.rollout_buffer.tied_at_best))
        if np.all(advantages == 0.0):
            self.logger.record("gpg/all_advantages_zero", 1)
            # Common once a task is solved (every episode reaches the time limit with the same return):
            # said once per model at verbose 1, every time at verbose 2, always logged.
            if self.verbose >= 2 or (self.verbose >= 1 and not self._zero_advantages_reported):
                more = "." if self.verbose >= 2 else "; verbose=2 prints each one."
                print(
                    "GPG: every advantage of this rollout is zero (all returns equal within their bins, for example when "
                    f"every episode reaches the time limit): the policy is unchanged. Logged as gpg/all_advantages_zero{more}"
                )
                self._zero_advantages_reported = True

    def train(self) -> None:
        """Update the policy with PPO's clipped surrogate objective on the current rollout (PPO's train() minus the critic)."""
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update optimizer learning rate
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]

        entropy_losses: list[float] = []
        pg_losses: list[float] = []
        clip_fractions: list[float] = []
        approx_kl_divs: list[float] = []
        loss = th.zeros(())
        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    # Convert discrete action from float to long
                    actions = actions.long().flatten()
                log_prob, entropy = self.policy.evaluate_actions(rollout_data.observations, actions)

                advantages = rollout_data.advantages
                # Normalization does not make sense if the minibatch has a single sample (SB3 GH#325)
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                # Ratio between the new and old policy, should be one at the first iteration
                ratio = th.exp(log_prob - rollout_data.old_log_prob)
                # Clipped surrogate loss
                policy_loss_1 = advantages * ratio
                policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()
                pg_losses.append(policy_loss.item())
                clip_fractions.append(th.mean((th.abs(ratio - 1) > clip_range).float()).item())

                # Entropy loss favors exploration; approximated by -log_prob when there is no analytical form
                entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
                entropy_losses.append(entropy_loss.item())
                # No value term: GPG has no critic
                loss = policy_loss + self.ent_coef * entropy_loss

                # Approximate KL for early stopping, as PPO (see SB3 GH#417 and http://joschu.net/blog/kl-approx.html)
                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).item()
                    approx_kl_divs.append(approx_kl_div)
                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}")
                    break

                # Optimization step
                self.policy.optimizer.zero_grad()
                loss.backward()
                # Clip grad norm
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

        # Logs (PPO's keys, minus value_loss and explained_variance)
        self.logger.record("train/entropy_loss", np.mean(entropy_losses) if entropy_losses else np.nan)
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses) if pg_losses else np.nan)
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs) if approx_kl_divs else np.nan)
        self.logger.record("train/clip_fraction", np.mean(clip_fractions) if clip_fractions else np.nan)
        self.logger.record("train/loss", loss.item())
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)

    def learn(
        self: SelfGPG,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "GPG",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfGPG:
        return super().learn(total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar)

    def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
        # A rollout ends on whole episodes, so the last one can run past total_timesteps, where SB3's progress goes
        # negative; rl-zoo3's linear_schedule ("lin_3e-4") then gives a negative learning rate: gradient ascent on
        # the last rollout. SB3's own LinearSchedule clamps; this clamps the progress for every schedule.
        super()._update_current_progress_remaining(num_timesteps, total_timesteps)
        self._current_progress_remaining = max(0.0, self._current_progress_remaining)

    def _excluded_save_params(self) -> list[str]:
        # The base class's critic and fixed-rollout parameters (see __init__), and what is found out again per env.
        per_env = ["_episode_step_limit", "_starts_checked", "_zero_advantages_reported", "_chains"]
        return [*super()._excluded_save_params(), "n_steps", "gae_lambda", "vf_coef", *per_env]

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """
        Save the model to a zip file, atomically: the file at ``path`` is either the previous one or the new one.

        :param path: path to the file where the agent should be saved (``.zip`` is added if missing), or a buffer
        :param exclude: name of parameters that should be excluded in addition to the default ones
        :param include: name of parameters that might be excluded but should be included anyway
        """
        save = super().save
        safety.save_atomically(lambda file: save(file, exclude, include), path)

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfGPG],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfGPG:
        """
        Load a GPG model from a zip file; a damaged file or another algorithm's file gets a clear error.

        :param path: path to the file (or a file-like) where to load the agent from
        :param env: the new environment to run the loaded model on (can be None if you only need prediction)
        :param device: Device on which the code should run.
        :param custom_objects: Dictionary of objects to replace upon loading.
        :param print_system_info: Whether to print system info from the saved model
        :param force_reset: Force call to ``reset()`` before training to avoid unexpected behavior.
        :param kwargs: extra arguments to change the model when loading
        :return: new model instance with loaded parameters
        """
        safety.check_model_file(path, custom_objects, GPGPolicy)
        with safety.corrupt_file_errors(path):
            return super().load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)
