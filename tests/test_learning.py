"""One learning test: GPG solves CartPole-v1 within 100k env steps with a fixed seed (slow; .ci/run runs it)."""

import gymnasium as gym
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_gpg import GPG


@pytest.mark.slow
def test_gpg_solves_cartpole_within_100k_steps():
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = GPG(
        "MlpPolicy", env, group_size=8, n_groups=2, learning_rate=1e-3, batch_size=256, n_epochs=10, seed=0, device="cpu"
    )
    # learn() completes its last rollout (up to 16 episodes of 500 steps): stop early enough to stay within 100k.
    model.learn(92_000)
    assert model.num_timesteps <= 100_000
    eval_env = Monitor(gym.make("CartPole-v1"))
    eval_env.reset(seed=123)
    mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
    assert mean_return >= 475, f"mean evaluation return {mean_return} after {model.num_timesteps} steps"
