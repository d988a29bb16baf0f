"""Exact snapshots: a restored environment steps bit for bit as the original, in every family GPG supports."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecFrameStack, VecNormalize

from sb3_gpg import add_group_reset
from sb3_gpg.branching import check_restorable
from sb3_gpg.snapshots import snapshot_method
from sb3_gpg.wrappers import GroupResetWrapper

FAMILIES = {
    "mujoco": ["Walker2d-v5", "Hopper-v5", "HalfCheetah-v5", "Ant-v5"],
    "copy": ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0"],
    "replay": ["LunarLander-v3", "LunarLanderContinuous-v3", "Taxi-v4"],
}
CASES = [(method, env_id) for method, ids in FAMILIES.items() for env_id in ids]


def make(env_id: str, **kwargs) -> gym.Env:
    return add_group_reset(gym.make(env_id, **kwargs))


def wrapper_of(env: gym.Env) -> GroupResetWrapper:
    while not isinstance(env, GroupResetWrapper):
        env = env.env
    return env


def play(env: gym.Env, actions: list) -> list[tuple]:
    transitions = []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        transitions.append((np.array(obs), float(reward), terminated, truncated))
        if terminated or truncated:
            break
    return transitions


def assert_same(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b) > 0
    for (obs_a, *rest_a), (obs_b, *rest_b) in zip(a, b, strict=True):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert rest_a == rest_b


@pytest.mark.parametrize(("method", "env_id"), CASES)
def test_restored_env_steps_bit_for_bit(method, env_id):
    env = make(env_id)
    assert snapshot_method(env) == method
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(60)]
    env.reset(seed=3)
    play(env, actions[:20])
    snapshot = wrapper_of(env).gpg_snapshot()
    assert snapshot.step == 20
    reference = play(env, actions[20:])
    # Another instance, first sent elsewhere by an episode of another seed, restores the state and steps alike.
    other = make(env_id)
    other.reset(seed=99)
    play(other, actions[:7])
    wrapper_of(other).gpg_arm_restore(snapshot)
    obs, _ = other.reset()
    np.testing.assert_array_equal(obs, snapshot.observation)
    assert_same(play(other, actions[20:]), reference)
    assert wrapper_of(other).gpg_take_replayed_steps() == (20 if method == "replay" else 0)
    # Twice from the same snapshot: the same again (the snapshot is not consumed or changed by a restore).
    wrapper_of(other).gpg_arm_restore(snapshot)
    other.reset()
    assert_same(play(other, actions[20:]), reference)


def test_a_restored_episode_ends_at_the_time_limit_and_the_horizon():
    env = make("Pendulum-v1")  # never terminates; TimeLimit at 200
    env.reset(seed=0)
    play(env, [np.zeros(1, dtype=np.float32)] * 195)
    snapshot = wrapper_of(env).gpg_snapshot()
    wrapper_of(env).gpg_arm_restore(snapshot)
    env.reset()
    ended = play(env, [np.zeros(1, dtype=np.float32)] * 50)
    assert len(ended) == 5 and ended[-1][3]  # truncated at step 200 of the episode, not 200 steps after the restore
    wrapper_of(env).gpg_arm_restore(snapshot, horizon=3)
    env.reset()
    assert len(play(env, [np.zeros(1, dtype=np.float32)] * 50)) == 3
    # np_random is restored too: a later draw is the one the original would have made.
    original = make("Pendulum-v1")
    original.reset(seed=0)
    play(original, [np.zeros(1, dtype=np.float32)] * 195)
    wrapper_of(env).gpg_arm_restore(snapshot)
    env.reset()
    assert env.unwrapped.np_random.random() == original.unwrapped.np_random.random()


class GlobalNoiseEnv(gym.Env):
    """Steps with the global NumPy generator: not deterministic given its reset seed."""

    observation_space = spaces.Box(-np.inf, np.inf, shape=(1,))
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._x = 0.0
        return np.array([self._x], dtype=np.float32), {}

    def step(self, action):
        self._x += np.random.normal()
        return np.array([self._x], dtype=np.float32), 0.0, False, False, {}


def test_a_replay_that_diverges_is_refused_with_the_fix():
    env = add_group_reset(GlobalNoiseEnv())
    env.reset(seed=1)
    play(env, [0] * 5)
    snapshot = wrapper_of(env).gpg_snapshot()
    wrapper_of(env).gpg_arm_restore(snapshot)
    with pytest.raises(ValueError, match=r"not deterministic.*self\.np_random"):
        env.reset()


def test_an_unseeded_episode_cannot_be_replayed():
    env = add_group_reset(GlobalNoiseEnv())
    env.reset()
    with pytest.raises(ValueError, match="without a seed"):
        wrapper_of(env).gpg_snapshot()


@pytest.mark.parametrize("vec_env_cls", [DummyVecEnv, SubprocVecEnv])
@pytest.mark.parametrize("env_id", ["Hopper-v5", "CartPole-v1", "LunarLander-v3"])
def test_snapshots_through_vec_envs_under_vec_normalize(vec_env_cls, env_id):
    # The snapshot of env 0 restored in envs 0 and 1 through an ordinary VecEnv reset: both observations go through
    # VecNormalize as any reset's, and both envs then step as env 0 did from that state.
    venv = VecNormalize(make_vec_env(env_id, n_envs=2, seed=0, vec_env_cls=vec_env_cls, wrapper_class=add_group_reset))
    try:
        check_restorable(venv)
        venv.action_space.seed(0)
        actions = [np.stack([venv.action_space.sample()] * 2) for _ in range(15)]
        venv.reset()
        for action in actions[:5]:
            venv.step(action)
        snapshot = venv.env_method("gpg_snapshot", indices=[0])[0]
        reference = []
        for action in actions[5:]:
            _, _, dones, _ = venv.step(action)
            reference.append((venv.get_original_obs()[0].copy(), venv.get_original_reward()[0], dones[0]))
            if dones[0]:
                break
        for i in (0, 1):
            venv.env_method("gpg_arm_restore", snapshot, indices=[i])
        obs = venv.reset()
        np.testing.assert_array_equal(venv.get_original_obs()[0], snapshot.observation)
        np.testing.assert_array_equal(venv.get_original_obs()[1], snapshot.observation)
        np.testing.assert_array_equal(obs, venv.normalize_obs(venv.get_original_obs()))
        for step, action in enumerate(actions[5 : 5 + len(reference)]):
            _, _, dones, _ = venv.step(action)
            for i in (0, 1):
                np.testing.assert_array_equal(venv.get_original_obs()[i], reference[step][0])
                assert venv.get_original_reward()[i] == reference[step][1]
                assert dones[i] == reference[step][2]
    finally:
        venv.close()


def test_stacking_outside_the_env_is_refused_with_the_fix():
    venv = VecFrameStack(make_vec_env("CartPole-v1", n_envs=2, wrapper_class=add_group_reset), n_stack=4)
    with pytest.raises(ValueError, match=r"VecFrameStack.*FrameStackObservation"):
        check_restorable(venv)
