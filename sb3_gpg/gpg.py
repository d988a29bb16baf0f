"""Group Policy Gradient (GPG): PPO's clipped update with critic-free, group Monte Carlo advantages."""

import io
import math
import os
import pathlib
import pickle
import tempfile
import zipfile
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule, obs_as_tensor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_gpg import estimator
from sb3_gpg.buffers import GroupRolloutBuffer
from sb3_gpg.estimator import BinningFn
from sb3_gpg.policies import CnnPolicy, GPGPolicy, MlpPolicy, MultiInputPolicy
from sb3_gpg.wrappers import GroupResetWrapper, add_group_reset

SelfGPG = TypeVar("SelfGPG", bound="GPG")

SUPPORTED_ACTION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
SUPPORTED_OBSERVATION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict)

#: Errors that reading a damaged zip file raises (zipfile, torch.load, pickle).
_CORRUPT_FILE_ERRORS = (zipfile.BadZipFile, EOFError, OSError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError)

#: An episode longer than this, in an env that declares no time limit, is taken to never end.
RUNAWAY_EPISODE_STEPS = 100_000


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class GroupScheduler:
    """
    Decides which group each env plays next, so that envs never wait for one another.

    A group's members are its first ``group_size`` episodes to *start*; membership depends only
    on when an env becomes free, never on how an episode turns out, so it adds no selection bias.
    When an episode starts, its env is armed with the group that has the most unclaimed need
    (``group_size`` minus started minus armed). Once every need is claimed, free envs are armed
    as backups of the neediest group: whichever armed env frees up first starts the member, and an
    env whose armed group has filled meanwhile plays an extra episode that is not stored (idle).

    :param n_groups: Number of groups of the rollout
    :param group_size: Members per group
    :param n_envs: Number of envs
    """

    def __init__(self, n_groups: int, group_size: int, n_envs: int) -> None:
        self.group_size = group_size
        self.started = np.zeros(n_groups, dtype=np.int64)
        self.claimed = np.zeros(n_groups, dtype=np.int64)
        self.armed: list[int | None] = [None] * n_envs
        #: Episode each env is playing, -1 when it plays none of the rollout's (idle).
        self.current = np.full(n_envs, -1, dtype=np.int64)
        self.n_started = 0

    def choose(self) -> int | None:
        """
        :return: The group to arm next, or None when every group has all its members.
        """
        need = self.group_size - self.started
        if not (need > 0).any():
            return None
        score = np.where(need > 0, need - self.claimed, np.iinfo(np.int64).min)
        return int(np.argmax(score))

    def start(self, env_index: int, group: int | None) -> int:
        """
        Env ``env_index`` starts an episode with the seed of ``group`` (None: unseeded).

        :return: The new episode's id if it is a member of its group, else -1.
        """
        if group is not None and self.started[group] < self.group_size:
            self.started[group] += 1
            self.current[env_index] = self.n_started
            self.n_started += 1
        else:
            self.current[env_index] = -1
        return int(self.current[env_index])

    def arm(self, env_index: int) -> int | None:
        """
        Choose the group env ``env_index`` plays after its current episode.

        :return: The group armed, or None.
        """
        group = self.choose()
        self.armed[env_index] = group
        if group is not None:
            self.claimed[group] += 1
        return group

    def on_reset(self, env_index: int) -> int:
        """
        Env ``env_index`` finished its episode and reset with its armed seed, if any.

        :return: The id of the episode it now plays, or -1.
        """
        group = self.armed[env_index]
        self.armed[env_index] = None
        if group is not None:
            self.claimed[group] -= 1
        return self.start(env_index, group)


class GPG(OnPolicyAlgorithm):
    """
    Group Policy Gradient (GPG): PPO without a critic.

    Each rollout collects ``n_groups`` groups of ``group_size`` whole episodes; the episodes of a
    group start from the same initial state (same reset seed). Every step's advantage is its
    discounted Monte Carlo return minus the mean return of its bin ``f(s, t)`` within its group,
    over the first visits of the group's episodes to that bin. The policy is then updated with
    PPO's clipped surrogate objective. There is no value network, no value loss, no ``vf_coef``
    and no ``gae_lambda``.

    Paper: J. Chen, Z. Zhang, H. Zhong, R. Antonova, "Group Policy Gradient", arXiv 2510.03679 (2025).

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param group_size: Number of episodes per group, all started from the same state (>= 2). The
        baseline of a bin is the mean of up to ``group_size`` returns: larger groups give a less noisy
        baseline but fewer distinct start states per rollout. 8 is a good default; 4 to 32 are reasonable.
    :param n_groups: Number of groups per rollout; a rollout holds ``n_groups * group_size`` episodes,
        which must be at least ``n_envs``. ``None`` picks the smallest count giving each env about four
        episodes per rollout: envs that finish early start another episode, and only the rollout's
        tail is idle (about 20% of env steps on CartPole-v1 with 8 envs; fewer with more episodes per env).
    :param binning: The binning function ``f(s, t)``: ``"timestep"`` (one baseline per time step, the
        default and the best general choice), ``"none"`` (one bin per group: GRPO / REINFORCE++ style),
        ``"state"`` (Discrete observation spaces: a per-state value), ``"grid"`` (observations rounded to
        a grid of width ``bin_eps``) or a callable ``f(observations, timesteps) -> int array (n_steps,)``.
        Too fine a binning leaves one return per bin (zero advantage); too coarse mixes unlike states.
    :param bin_width: Time steps per bin with ``binning="timestep"``; raise it (e.g. 5-20) for long,
        variable-length episodes whose late time steps are visited by few episodes of a group.
    :param bin_eps: Grid width with ``binning="grid"``, in the units of the observations the policy
        sees (normalized ones under ``VecNormalize``).
    :param max_episode_steps: Optional cap on episode length (episodes are truncated there). Episodes
        also end at termination and at the env's own time limit. Truncated episodes are treated as
        finished: their returns are cut there (finite-horizon returns, no bootstrap).
    :param batch_size: Minibatch size. A rollout smaller than this is used as a single minibatch.
    :param n_epochs: Number of epochs when optimizing the surrogate loss
    :param gamma: Discount factor
    :param clip_range: Clipping parameter, it can be a function of the current progress remaining (from 1 to 0).
    :param normalize_advantage: Whether to normalize the advantages (per minibatch, as PPO)
    :param ent_coef: Entropy coefficient for the loss calculation
    :param max_grad_norm: The maximum value for the gradient clipping
    :param use_sde: Whether to use generalized State Dependent Exploration (gSDE)
        instead of action noise exploration (default: False)
    :param sde_sample_freq: Sample a new noise matrix every n steps when using gSDE
        Default: -1 (only sample at the beginning of the rollout)
    :param target_kl: Limit the KL divergence between updates (early stop of the epochs), as PPO.
        By default, there is no limit on the kl div.
    :param stats_window_size: Window size for the rollout logging, specifying the number of episodes to average
        the reported success rate, mean episode length, and mean reward over
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation. See :ref:`gpg_policies`
    :param verbose: Verbosity level: 0 for no output, 1 for info messages (such as device or wrappers used), 2 for
        debug messages
    :param seed: Seed for the pseudo random generators (also draws the groups' reset seeds)
    :param device: Device (cpu, cuda, ...) on which the code should be run.
        Setting it to auto, the code will be run on the GPU if possible.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    #: Tells GPGPolicy that this algorithm needs no critic (other algorithms are refused).
    actor_only: ClassVar[bool] = True
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
        max_episode_steps: int | None = None,
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
    ):
        # Validate before building anything, so that a typo fails fast with a clear message.
        self.group_size = _check_positive_int("group_size", group_size)
        self.n_groups = None if n_groups is None else _check_positive_int("n_groups", n_groups)
        self.batch_size = _check_positive_int("batch_size", batch_size)
        self.n_epochs = _check_positive_int("n_epochs", n_epochs)
        self.bin_width = _check_positive_int("bin_width", bin_width)
        self.max_episode_steps = (
            None if max_episode_steps is None else _check_positive_int("max_episode_steps", max_episode_steps)
        )
        if not (isinstance(bin_eps, (int, float)) and math.isfinite(bin_eps) and bin_eps > 0):
            raise ValueError(f"bin_eps must be a finite number > 0 (the grid width of binning='grid'), got {bin_eps!r}")
        self.bin_eps = float(bin_eps)
        if not (callable(binning) or binning in estimator.BINNINGS):
            raise ValueError(
                f"binning={binning!r} is unknown: use one of {estimator.BINNINGS} or a callable f(observations, timesteps)"
            )
        if self.group_size < 2:
            raise ValueError(
                f"group_size={group_size}: no bin can ever hold two returns. Bins are scoped to a group and, under the "
                "first-visit rule, receive at most one return per episode, so with a single episode per group every "
                "advantage is zero and nothing is learned, whatever the binning. Use group_size >= 2 (8 is a good default)."
            )
        self.binning = binning
        self.clip_range = clip_range
        self.normalize_advantage = normalize_advantage
        self.target_kl = target_kl

        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=0,  # unused: a rollout is n_groups * group_size whole episodes
            gamma=gamma,
            gae_lambda=1.0,  # unused: no GAE
            ent_coef=ent_coef,
            vf_coef=0.0,  # unused: no critic
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
        # OnPolicyAlgorithm sets these for its critic; GPG has none, so they must not appear in saved models.
        del self.gae_lambda, self.vf_coef

        self._check_spaces()
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ setup

    def _check_spaces(self) -> None:
        """Refuse spaces GPG cannot handle, and binnings that do not fit the observation space."""
        # At load time (env=None, _init_setup_model=False) the spaces are set later from the file.
        if getattr(self, "observation_space", None) is None:
            return
        if not isinstance(self.action_space, SUPPORTED_ACTION_SPACES):
            raise ValueError(
                f"GPG does not support the action space {self.action_space} of this env: supported action spaces are "
                "Box, Discrete, MultiDiscrete and MultiBinary (as PPO). Flatten or re-encode the actions with a wrapper."
            )
        if not isinstance(self.observation_space, SUPPORTED_OBSERVATION_SPACES):
            raise ValueError(
                f"GPG does not support the observation space {self.observation_space} of this env: supported are Box "
                "(vectors and images), Discrete, MultiDiscrete, MultiBinary and Dict of those (as PPO)."
            )
        if self.binning == "state" and not isinstance(self.observation_space, spaces.Discrete):
            raise ValueError(
                f"binning='state' needs a Discrete observation space, got {self.observation_space}: "
                "use binning='grid' (with bin_eps) for continuous observations, or 'timestep'"
            )
        if self.binning == "grid" and not isinstance(
            self.observation_space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete)
        ):
            raise ValueError(
                f"binning='grid' needs array observations, got {self.observation_space}: pass a callable binning instead"
            )

    @property
    def n_steps(self) -> int:
        """Unused by GPG (SB3's fixed rollout length per env): a rollout is ``n_groups * group_size`` whole episodes."""
        return 0

    @n_steps.setter
    def n_steps(self, value: int) -> None:
        # OnPolicyAlgorithm.__init__ assigns n_steps; GPG has no fixed rollout length, so nothing is stored.
        pass

    @property
    def episodes_per_rollout(self) -> int:
        """Number of episodes collected per rollout (``n_groups * group_size``)."""
        return self._n_groups() * self.group_size

    def _n_groups(self) -> int:
        if self.n_groups is not None:
            return self.n_groups
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
        # Reset seeds of the groups come from their own generator, seeded by the model's seed,
        # so that a seeded run draws the same start states.
        self._group_seed_rng = np.random.default_rng(self.seed)
        self.rollout_buffer = GroupRolloutBuffer(
            self.observation_space,
            self.action_space,
            device=self.device,
            gamma=self.gamma,
            binning=self.binning,
            bin_width=self.bin_width,
            bin_eps=self.bin_eps,
        )
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, use_sde=self.use_sde, **self.policy_kwargs
        )
        self.policy = self.policy.to(self.device)
        self._maybe_recommend_cpu("GPGPolicy")
        self.clip_range = FloatSchedule(self.clip_range)
        if self.env is not None:
            self._configure_env(self.env)

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """
        SB3's wrapping, plus a :class:`GroupResetWrapper` in every sub-environment.

        :param env: Environment
        :param verbose: Verbosity level
        :param monitor_wrapper: Whether to wrap the env in a ``Monitor`` when possible.
        :return: The wrapped vectorized environment.
        """
        vec_env = BaseAlgorithm._wrap_env(env, verbose, monitor_wrapper)
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

    def _configure_env(self, env: VecEnv) -> None:
        """Pass the step cap to the sub-environments and find their time limit."""
        env.env_method("gpg_set_max_episode_steps", self.max_episode_steps)
        spec_limits = []
        for spec in env.get_attr("spec"):
            spec_limits.append(getattr(spec, "max_episode_steps", None) if spec is not None else None)
        limits = [limit for limit in spec_limits if limit is not None]
        self._episode_step_limit = self.max_episode_steps or (max(limits) if len(limits) == len(spec_limits) else None)

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        self._check_n_envs()
        self._configure_env(self.env)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ rollouts

    def collect_rollouts(  # type: ignore[override]
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: GroupRolloutBuffer,
        n_rollout_steps: int = 0,
    ) -> bool:
        """
        Collect ``n_groups`` groups of ``group_size`` whole episodes and compute their advantages.

        Each env plays episodes one after another. When an episode starts, the env is armed with the
        reset seed of a group that still needs members (see :class:`GroupScheduler`), so its own
        auto-reset (through every ``VecEnv`` wrapper) starts the next episode at once. Envs with
        nothing left to play keep stepping until the rollout's last episode ends ("idle" steps,
        counted in ``num_timesteps`` and logged as ``rollout/idle_fraction``).

        :param env: The training environment
        :param callback: Callback that will be called at each step (and at the beginning and end of the rollout)
        :param rollout_buffer: Buffer to fill with rollouts
        :param n_rollout_steps: Unused (SB3's fixed rollout length); GPG collects whole episodes.
        :return: True if the rollout completed, False if a callback stopped it.
        """
        self.policy.set_training_mode(False)
        n_envs = env.num_envs
        n_groups = self._n_groups()
        group_seeds = self._group_seed_rng.integers(0, 2**31 - 1, size=n_groups)
        scheduler = GroupScheduler(n_groups, self.group_size, n_envs)
        rollout_buffer.reset()

        def arm(i: int) -> None:
            group = scheduler.arm(i)
            if group is not None:
                env.env_method("gpg_arm_reset", int(group_seeds[group]), indices=[i])

        env.env_method("gpg_clear")
        # Every env starts one episode of the rollout with a VecEnv reset (through every VecEnv wrapper),
        # and is armed for the episode it will start after that one.
        for i in range(n_envs):
            group = scheduler.choose()
            assert group is not None  # n_groups * group_size >= n_envs is checked at construction
            env.env_method("gpg_arm_reset", int(group_seeds[group]), indices=[i])
            rollout_buffer.start_episode(scheduler.start(i, group), group)
        for i in range(n_envs):
            arm(i)
        self._last_obs = env.reset()  # type: ignore[assignment]
        self._last_episode_starts = np.ones((n_envs,), dtype=bool)

        if self.use_sde:
            self.policy.reset_noise(n_envs)
        callback.on_rollout_start()

        n_steps = 0
        idle_steps = 0
        episodes_done = 0
        episode_steps = np.zeros(n_envs, dtype=np.int64)
        n_episodes = n_groups * self.group_size
        step_limit = self._episode_step_limit or RUNAWAY_EPISODE_STEPS

        while episodes_done < n_episodes:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(n_envs)

            with th.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                actions, log_probs = self.policy(obs_tensor)
            actions = actions.cpu().numpy()
            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                if self.policy.squash_output:
                    clipped_actions = self.policy.unscale_action(clipped_actions)
                else:
                    clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)

            new_obs, rewards, dones, infos = env.step(clipped_actions)
            self.num_timesteps += n_envs
            n_steps += 1

            callback.update_locals(locals())
            if not callback.on_step():
                return False

            current = scheduler.current
            active = current >= 0
            self._check_finite(rewards, new_obs, active, n_steps)
            rollout_buffer.add(self._last_obs, actions, log_probs, rewards, current)  # type: ignore[arg-type]
            idle_steps += int(n_envs - active.sum())
            episode_steps += 1
            if episode_steps.max() > step_limit:
                i = int(np.argmax(episode_steps))
                raise RuntimeError(
                    f"The episode of env {i} has run {episode_steps[i]} steps without terminating or truncating, and the "
                    "env declares no time limit (no TimeLimit wrapper, no spec.max_episode_steps). GPG needs whole "
                    "episodes: pass max_episode_steps=N to GPG, or wrap the env in gymnasium.wrappers.TimeLimit."
                )

            finished = np.flatnonzero(dones & active)
            episodes_done += len(finished)
            # Only episodes of the rollout enter the episode statistics (not the idle envs' extra ones).
            self._update_info_buffer([infos[i] for i in finished], dones[finished])
            for i in np.flatnonzero(dones):
                # The env has already reset itself, with its armed seed if it had one.
                group = scheduler.armed[i]
                episode = scheduler.on_reset(int(i))
                if episode >= 0:
                    rollout_buffer.start_episode(episode, group)  # type: ignore[arg-type]
                arm(int(i))
            episode_steps[dones] = 0
            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones

        rollout_buffer.compute_returns_and_advantage()
        advantages = rollout_buffer.advantages
        self.logger.record("rollout/idle_fraction", idle_steps / (n_steps * n_envs))
        self.logger.record("gpg/episodes_per_rollout", n_episodes)
        self.logger.record("gpg/rollout_steps", rollout_buffer.size())
        self.logger.record("gpg/advantage_std", float(np.std(advantages)))
        self.logger.record("gpg/zero_advantage_fraction", float(np.mean(advantages == 0.0)))
        self.logger.record("gpg/singleton_bin_fraction", rollout_buffer.singleton_bin_fraction)
        if np.all(advantages == 0.0):
            self.logger.record("gpg/all_advantages_zero", 1)
            if self.verbose >= 1:
                print("GPG: every advantage of this rollout is zero (all returns equal within their bins): no policy change.")

        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    @staticmethod
    def _check_finite(rewards: np.ndarray, obs: Any, active: np.ndarray, step: int) -> None:
        bad = ~np.isfinite(rewards) & active
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"Env {i} returned a non-finite reward ({rewards[i]}) at step {step} of the rollout. GPG's Monte Carlo "
                "returns would all become NaN. Fix the env, or wrap it in VecCheckNan(env, raise_exception=True) to find "
                "the cause (VecNormalize rescales rewards but cannot repair NaN/inf)."
            )
        arrays = obs.values() if isinstance(obs, dict) else [obs]
        for array in arrays:
            array = np.asarray(array)
            if np.issubdtype(array.dtype, np.floating):
                finite = np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1)
                if not finite.all():
                    i = int(np.flatnonzero(~finite)[0])
                    raise ValueError(
                        f"Env {i} returned a non-finite observation at step {step} of the rollout. Fix the env, or wrap "
                        "it in VecCheckNan(env, raise_exception=True) to find the cause; VecNormalize cannot repair NaN/inf."
                    )

    # ------------------------------------------------------------------ training

    def train(self) -> None:
        """Update the policy with PPO's clipped surrogate objective on the current rollout."""
        self.policy.set_training_mode(True)
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
                    actions = actions.long().flatten()
                log_prob, entropy = self.policy.evaluate_actions(rollout_data.observations, actions)

                advantages = rollout_data.advantages
                # Normalization does not make sense if the minibatch has a single sample (SB3 GH#325)
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                ratio = th.exp(log_prob - rollout_data.old_log_prob)
                policy_loss_1 = advantages * ratio
                policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()
                pg_losses.append(policy_loss.item())
                clip_fractions.append(th.mean((th.abs(ratio - 1) > clip_range).float()).item())

                if entropy is None:
                    # Approximate entropy when no analytical form
                    entropy_loss = -th.mean(-log_prob)
                else:
                    entropy_loss = -th.mean(entropy)
                entropy_losses.append(entropy_loss.item())
                loss = policy_loss + self.ent_coef * entropy_loss

                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).item()
                    approx_kl_divs.append(approx_kl_div)
                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}")
                    break

                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

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
        """
        Train the policy for at least ``total_timesteps`` env steps (the last rollout is completed).

        :param total_timesteps: The total number of samples (env steps) to train on
        :param callback: callback(s) called at every step with state of the algorithm.
        :param log_interval: The number of rollouts before logging.
        :param tb_log_name: the name of the run for TensorBoard logging
        :param reset_num_timesteps: whether or not to reset the current timestep number (used in logging)
        :param progress_bar: Display a progress bar using tqdm and rich.
        :return: the trained model
        """
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    # ------------------------------------------------------------------ persistence

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_episode_step_limit"]

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """
        Save the model to a zip file, atomically: the file at ``path`` is either the previous one or the new one.

        The model is written to a temporary file in the same directory, then renamed over ``path``, so a
        process killed while saving never leaves a truncated checkpoint.

        :param path: path to the file where the agent should be saved (``.zip`` is added if missing), or a buffer
        :param exclude: name of parameters that should be excluded in addition to the default ones
        :param include: name of parameters that might be excluded but should be included anyway
        """
        if isinstance(path, io.BufferedIOBase):
            super().save(path, exclude, include)
            return
        path = pathlib.Path(path)
        if path.suffix == "":
            path = path.with_suffix(".zip")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                super().save(file, exclude, include)  # type: ignore[arg-type]
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            if os.path.exists(tmp_name):
                os.remove(tmp_name)
            raise

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
        Load a GPG model from a zip file; a file that is not a GPG model gets a clear error.

        :param path: path to the file (or a file-like) where to load the agent from
        :param env: the new environment to run the loaded model on (can be None if you only need prediction)
        :param device: Device on which the code should run.
        :param custom_objects: Dictionary of objects to replace upon loading.
        :param print_system_info: Whether to print system info from the saved model
        :param force_reset: Force call to ``reset()`` before training to avoid unexpected behavior.
        :param kwargs: extra arguments to change the model when loading
        :return: new model instance with loaded parameters
        """

        def corrupt(error: BaseException | None) -> ValueError:
            cause = "" if error is None else f" ({type(error).__name__}: {error})"
            return ValueError(
                f"Could not read a model from {path!r}: the file is corrupt or truncated{cause}. "
                "Load an earlier checkpoint (GPG.save() writes atomically, so the previous file is intact)."
            )

        try:
            data, _, _ = load_from_zip_file(path, device="cpu", custom_objects=custom_objects)
        except FileNotFoundError:
            raise
        except _CORRUPT_FILE_ERRORS as error:
            raise corrupt(error) from error
        if data is None or "policy_class" not in data:
            raise corrupt(None)
        policy_class = data["policy_class"]
        if not (isinstance(policy_class, type) and issubclass(policy_class, GPGPolicy)):
            name = getattr(policy_class, "__name__", repr(policy_class))
            raise ValueError(
                f"{path!r} was not saved by GPG (its policy is {name}): load it with the algorithm that saved it, "
                "for example stable_baselines3.PPO.load()."
            )
        if isinstance(path, io.BufferedIOBase):
            path.seek(0)
        try:
            return super().load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)
        except _CORRUPT_FILE_ERRORS as error:
            if isinstance(error, FileNotFoundError):
                raise
            raise corrupt(error) from error
