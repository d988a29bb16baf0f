"""Actor-only policies for GPG: PPO's actor without any value network."""

import warnings
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    BernoulliDistribution,
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
    MultiCategoricalDistribution,
    StateDependentNoiseDistribution,
    make_proba_distribution,
)
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn


def _policy_layers(net_arch: list[int] | dict[str, list[int]] | None, default: list[int]) -> list[int]:
    """
    Hidden layer sizes of the actor from a PPO-style ``net_arch``.

    :param net_arch: ``[64, 64]``, ``dict(pi=[64, 64])`` or ``None`` (use ``default``).
        A ``vf`` entry is ignored with a warning: GPG has no value network.
    :param default: Layers used when ``net_arch`` is ``None``.
    :return: The list of hidden layer sizes.
    """
    if net_arch is None:
        return list(default)
    if isinstance(net_arch, dict):
        unknown = set(net_arch) - {"pi", "vf"}
        if unknown:
            raise ValueError(
                f"net_arch has unknown keys {sorted(unknown)}: pass a list of layer sizes, e.g. net_arch=[64, 64]"
            )
        if "vf" in net_arch:
            warnings.warn("net_arch['vf'] is ignored: GPG has no value network; pass net_arch=[...] for the actor.")
        return list(net_arch.get("pi", []))
    if not all(isinstance(size, (int, np.integer)) and size > 0 for size in net_arch):
        raise ValueError(f"net_arch must be a list of positive layer sizes, e.g. [64, 64]; got {net_arch!r}")
    return [int(size) for size in net_arch]


class GPGPolicy(BasePolicy):
    """
    Actor-only policy for GPG, used with MLP features (``MlpPolicy``).

    It is PPO's actor (``ActorCriticPolicy`` minus the value network): features extractor,
    policy MLP, action head and, for continuous actions, the log standard deviation.
    For the same ``net_arch`` its parameter count equals that of PPO's actor. The CNN and
    multi-input policies are this class with another default features extractor.

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: Hidden layer sizes of the actor, e.g. ``[64, 64]`` (the default for MLP features,
        ``[]`` for CNN features). ``dict(pi=[...])`` is accepted for compatibility with PPO configs.
    :param activation_fn: Activation function
    :param ortho_init: Whether to use orthogonal initialization (as PPO)
    :param use_sde: Whether to use State Dependent Exploration
    :param log_std_init: Initial value for the log standard deviation
    :param full_std: Whether to use (n_features x n_actions) parameters for the std instead of only
        (n_features,) when using gSDE
    :param use_expln: Use ``expln()`` instead of ``exp()`` to ensure a positive standard deviation (gSDE)
    :param squash_output: Whether to squash the output using a tanh function (only with gSDE)
    :param features_extractor_class: Features extractor to use; by default the class's
        ``default_features_extractor_class`` (FlattenExtractor here, NatureCNN for ``CnnPolicy``,
        CombinedExtractor for ``MultiInputPolicy``)
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor.
    :param normalize_images: Whether to normalize images or not, dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
    """

    #: Features extractor used when ``features_extractor_class`` is not given: all that the subclasses change.
    default_features_extractor_class: ClassVar[type[BaseFeaturesExtractor]] = FlattenExtractor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ):
        if features_extractor_class is None:
            features_extractor_class = self.default_features_extractor_class
        if optimizer_kwargs is None:
            optimizer_kwargs = {}
            # Same small epsilon as SB3's PPO, to avoid NaN in Adam
            if optimizer_class == th.optim.Adam:
                optimizer_kwargs["eps"] = 1e-5
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class,
            features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            squash_output=squash_output,
            normalize_images=normalize_images,
        )
        if squash_output and not use_sde:
            raise ValueError("squash_output=True is only available with gSDE: pass use_sde=True or squash_output=False")
        self.net_arch = _policy_layers(net_arch, [] if features_extractor_class == NatureCNN else [64, 64])
        self.activation_fn = activation_fn
        self.ortho_init = ortho_init
        self.log_std_init = log_std_init
        self.use_sde = use_sde
        self.dist_kwargs: dict[str, Any] | None = None
        if use_sde:
            self.dist_kwargs = {
                "full_std": full_std,
                "squash_output": squash_output,
                "use_expln": use_expln,
                "learn_features": False,
            }
        self.features_extractor = self.make_features_extractor()
        self.features_dim = self.features_extractor.features_dim
        self.action_dist = make_proba_distribution(action_space, use_sde=use_sde, dist_kwargs=self.dist_kwargs)
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        """
        Create the actor network and the optimizer.

        :param lr_schedule: Learning rate schedule; ``lr_schedule(1)`` is the initial learning rate.
        """
        layers: list[nn.Module] = []
        last_dim = self.features_dim
        for size in self.net_arch:
            layers += [nn.Linear(last_dim, size), self.activation_fn()]
            last_dim = size
        self.policy_net = nn.Sequential(*layers)
        self.latent_dim_pi = last_dim

        if isinstance(self.action_dist, DiagGaussianDistribution):
            self.action_net, self.log_std = self.action_dist.proba_distribution_net(
                latent_dim=last_dim, log_std_init=self.log_std_init
            )
        elif isinstance(self.action_dist, StateDependentNoiseDistribution):
            self.action_net, self.log_std = self.action_dist.proba_distribution_net(
                latent_dim=last_dim, latent_sde_dim=last_dim, log_std_init=self.log_std_init
            )
        elif isinstance(self.action_dist, (CategoricalDistribution, MultiCategoricalDistribution, BernoulliDistribution)):
            self.action_net = self.action_dist.proba_distribution_net(latent_dim=last_dim)
        else:
            raise NotImplementedError(f"Unsupported distribution '{self.action_dist}'.")

        if self.ortho_init:
            # Same gains as SB3's ActorCriticPolicy (from openai/baselines)
            module_gains = {self.features_extractor: np.sqrt(2), self.policy_net: np.sqrt(2), self.action_net: 0.01}
            for module, gain in module_gains.items():
                module.apply(partial(self.init_weights, gain=gain))

        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        dist_kwargs = self.dist_kwargs or {}
        data.update(
            dict(
                net_arch=self.net_arch,
                activation_fn=self.activation_fn,
                use_sde=self.use_sde,
                log_std_init=self.log_std_init,
                squash_output=dist_kwargs.get("squash_output", False),
                full_std=dist_kwargs.get("full_std", True),
                use_expln=dist_kwargs.get("use_expln", False),
                lr_schedule=self._dummy_schedule,  # not needed for loading the policy alone
                ortho_init=self.ortho_init,
                optimizer_class=self.optimizer_class,
                optimizer_kwargs=self.optimizer_kwargs,
                features_extractor_class=self.features_extractor_class,
                features_extractor_kwargs=self.features_extractor_kwargs,
            )
        )
        return data

    def reset_noise(self, n_envs: int = 1) -> None:
        """
        Sample new weights for the exploration matrix (gSDE only).

        :param n_envs: Number of environments.
        """
        if not isinstance(self.action_dist, StateDependentNoiseDistribution):
            raise ValueError("reset_noise() is only available when using gSDE (use_sde=True)")
        self.action_dist.sample_weights(self.log_std, batch_size=n_envs)

    def _get_action_dist_from_latent(self, latent_pi: th.Tensor) -> Distribution:
        """
        Action distribution for the given latent codes.

        :param latent_pi: Latent code of the actor
        :return: Action distribution
        """
        mean_actions = self.action_net(latent_pi)
        if isinstance(self.action_dist, DiagGaussianDistribution):
            return self.action_dist.proba_distribution(mean_actions, self.log_std)
        if isinstance(self.action_dist, (CategoricalDistribution, MultiCategoricalDistribution, BernoulliDistribution)):
            return self.action_dist.proba_distribution(action_logits=mean_actions)
        if isinstance(self.action_dist, StateDependentNoiseDistribution):
            return self.action_dist.proba_distribution(mean_actions, self.log_std, latent_pi)
        raise ValueError("Invalid action distribution")

    def get_distribution(self, obs: PyTorchObs) -> Distribution:
        """
        The current policy's action distribution for the given observations.

        :param obs: Observation
        :return: The action distribution.
        """
        features = self.extract_features(obs, self.features_extractor)
        return self._get_action_dist_from_latent(self.policy_net(features))

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor]:  # type: ignore[override]
        """
        Sample actions and their log probabilities.

        :param obs: Observation
        :param deterministic: Whether to sample or use deterministic actions
        :return: action and log probability of the action (no value: GPG has no critic)
        """
        distribution = self.get_distribution(obs)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        actions = actions.reshape((-1, *self.action_space.shape))  # type: ignore[misc]
        return actions, log_prob

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)

    def evaluate_actions(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor | None]:
        """
        Log likelihood and entropy of the given actions under the current policy.

        :param obs: Observation
        :param actions: Actions
        :return: log likelihood of the actions and entropy of the action distribution
        """
        distribution = self.get_distribution(obs)
        return distribution.log_prob(actions), distribution.entropy()


class GPGCnnPolicy(GPGPolicy):
    """Actor-only policy for image observations (``CnnPolicy``): :class:`GPGPolicy` with NatureCNN features."""

    default_features_extractor_class = NatureCNN


class GPGMultiInputPolicy(GPGPolicy):
    """Actor-only policy for Dict observations (``MultiInputPolicy``): :class:`GPGPolicy` with CombinedExtractor features."""

    default_features_extractor_class = CombinedExtractor


MlpPolicy = GPGPolicy
CnnPolicy = GPGCnnPolicy
MultiInputPolicy = GPGMultiInputPolicy
