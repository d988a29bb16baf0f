"""GPG.train(): PPO's actor update, early stop on target_kl, schedules and the entropy term."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure

from sb3_gpg import GPG
from tests.envs import ConstantRewardEnv


def _actor_parameters(model) -> th.Tensor:
    policy = model.policy
    if isinstance(model, PPO):
        modules = [policy.mlp_extractor.policy_net, policy.action_net]
    else:
        modules = [policy.policy_net, policy.action_net]
    return th.nn.utils.parameters_to_vector([p for m in modules for p in m.parameters()]).detach().clone()


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
@pytest.mark.parametrize("normalize_advantage", [True, False])
@pytest.mark.parametrize("optimizer_class", [th.optim.Adam, th.optim.SGD])
def test_one_update_equals_ppo_actor_update(env_id, normalize_advantage, optimizer_class):
    # Same actor weights, same optimizer, same minibatch and advantages: one GPG update moves the actor
    # exactly as one PPO update does. PPO's critic must not touch its actor: vf_coef=0 gives its value
    # parameters zero gradients, so neither the loss nor clip_grad_norm_'s total norm nor Adam sees them
    # (separate pi/vf networks; the features extractor of MlpPolicy has no parameters). Adam's first step is
    # about lr * sign(gradient), blind to the gradient's size; SGD's is proportional to it.
    n = 96
    common = dict(
        learning_rate=0.05, batch_size=n, n_epochs=1, clip_range=0.2, ent_coef=0.1, max_grad_norm=0.1, seed=0, device="cpu"
    )
    common["policy_kwargs"] = dict(optimizer_class=optimizer_class)
    gpg = GPG("MlpPolicy", env_id, normalize_advantage=normalize_advantage, **common)
    ppo = PPO("MlpPolicy", env_id, n_steps=n, vf_coef=0.0, normalize_advantage=normalize_advantage, **common)
    for model in (gpg, ppo):
        model.set_logger(configure(folder=None, format_strings=[]))  # train() outside learn() needs a logger
    gpg.policy.policy_net.load_state_dict(ppo.policy.mlp_extractor.policy_net.state_dict())
    gpg.policy.action_net.load_state_dict(ppo.policy.action_net.state_dict())
    if hasattr(ppo.policy, "log_std"):
        gpg.policy.log_std.data.copy_(ppo.policy.log_std.data)
    np.testing.assert_array_equal(_actor_parameters(gpg).numpy(), _actor_parameters(ppo).numpy())

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, *gpg.observation_space.shape)).astype(np.float32)
    with th.no_grad():
        actions, log_probs = gpg.policy(th.as_tensor(obs))
    actions = actions.numpy()
    advantages = rng.normal(size=n).astype(np.float32)

    gpg.rollout_buffer.reset()
    for t in range(n):
        gpg.rollout_buffer.add(obs[t : t + 1], actions[t : t + 1], log_probs[t : t + 1], np.zeros(1), np.array([0]))
    gpg.rollout_buffer.compute_returns_and_advantage(np.array([0]))
    gpg.rollout_buffer.advantages = advantages  # the minibatch's advantages, as PPO's below

    ppo.rollout_buffer.reset()
    for t in range(n):
        ppo.rollout_buffer.add(
            obs[t : t + 1], actions[t : t + 1], np.zeros(1), np.array([t == 0]), th.zeros(1, 1), log_probs[t : t + 1]
        )
    ppo.rollout_buffer.advantages = advantages.reshape(n, 1)
    ppo.rollout_buffer.returns = advantages.reshape(n, 1)

    before = _actor_parameters(gpg)
    gpg.train()
    ppo.train()
    after_gpg, after_ppo = _actor_parameters(gpg), _actor_parameters(ppo)
    assert not th.equal(after_gpg, before), "the update moved the actor"
    th.testing.assert_close(after_gpg, after_ppo, rtol=1e-5, atol=1e-6)
    for key in ("train/policy_gradient_loss", "train/entropy_loss", "train/approx_kl", "train/clip_fraction"):
        assert gpg.logger.name_to_value[key] == pytest.approx(ppo.logger.name_to_value[key], rel=1e-5, abs=1e-7)


def test_target_kl_stops_the_epochs_early():
    kwargs = dict(group_size=4, n_groups=1, batch_size=16, n_epochs=10, learning_rate=1e-2, seed=0)
    model = GPG("MlpPolicy", "CartPole-v1", **kwargs)
    model.learn(1)
    assert model._n_updates == 10 and model.rollout_buffer.size() > 32, "several minibatches per epoch"
    # The first minibatch has ratio 1 (KL 0) and is trained on; the second exceeds 1.5 * target_kl: stop.
    stopped = GPG("MlpPolicy", "CartPole-v1", target_kl=1e-9, **kwargs)
    before = _actor_parameters(stopped)
    stopped.learn(1)
    assert stopped._n_updates == 1
    assert stopped.logger.name_to_value["train/approx_kl"] > 1.5e-9
    assert not th.equal(before, _actor_parameters(stopped)), "the update before the stop was applied"


def test_learning_rate_and_clip_range_schedules():
    model = GPG(
        "MlpPolicy",
        "CartPole-v1",
        group_size=2,
        n_groups=1,
        n_epochs=1,
        learning_rate=lambda progress: 1e-3 * progress,
        clip_range=lambda progress: 0.3 * progress,
        seed=0,
    )
    model.learn(1)
    # learn() sets the progress remaining (1 -> 0) before each train(); train() reads both schedules at it.
    progress = model._current_progress_remaining = 0.4
    model.train()
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * progress)
    assert model.logger.name_to_value["train/learning_rate"] == pytest.approx(1e-3 * progress)
    assert model.logger.name_to_value["train/clip_range"] == pytest.approx(0.3 * progress)


def test_progress_past_the_budget_is_clamped_at_zero():
    # A rollout of whole episodes runs past total_timesteps. Unclamped, the progress would be negative and this
    # schedule (rl-zoo3's "lin_" form) would train the last rollout with a negative learning rate: gradient ascent.
    model = GPG("MlpPolicy", "CartPole-v1", group_size=2, n_groups=1, n_epochs=2, learning_rate=lambda p: 1e-3 * p, seed=0)
    before = _actor_parameters(model)
    model.learn(1)  # one rollout (two whole episodes), then one train() at the progress after it
    assert model.num_timesteps > 1 and model._current_progress_remaining == 0.0
    assert model.logger.name_to_value["train/learning_rate"] == 0.0
    assert th.equal(before, _actor_parameters(model)), "a zero learning rate leaves the actor as it was"


@pytest.mark.parametrize("ent_coef", [0.0, 0.5])
def test_entropy_term_alone_raises_the_entropy(ent_coef):
    # Every advantage is zero (constant rewards): only the entropy term can move the policy.
    model = GPG("MlpPolicy", ConstantRewardEnv(length=5), group_size=4, n_groups=1, n_epochs=4, ent_coef=ent_coef, seed=0)
    model.policy.action_net.bias.data = th.tensor([2.0, -2.0])  # start far from the uniform (maximum-entropy) policy
    obs = th.as_tensor(np.stack([model.observation_space.sample() for _ in range(32)]))
    before = model.policy.get_distribution(obs).entropy().mean().item()
    model.learn(20)
    after = model.policy.get_distribution(obs).entropy().mean().item()
    if ent_coef == 0.0:
        assert after == before
    else:
        assert after > before
        assert model.logger.name_to_value["train/entropy_loss"] < 0
