"""Small environments for the tests."""

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class KnownRewardEnv(gym.Env):
    """
    Discrete(2) actions; reward ``action + 0.1``; observation ``[t / 10]``.

    The episode length limit ``L`` in [3, 6] is drawn from the reset seed, so the episodes of a
    group share it; an episode also ends early after two consecutive ``1`` actions, so lengths vary
    within a group. Every finished episode is logged in ``episodes`` (class attribute) with its
    reset seed and rewards.
    """

    episodes: list[dict[str, Any]] = []

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Box(0.0, 10.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self._seed: int | None = None
        self._t = 0
        self._limit = 3
        self._rewards: list[float] = []
        self._last_action = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._seed = seed
        self._t = 0
        self._limit = int(self.np_random.integers(3, 7))
        self._rewards = []
        self._last_action = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        action = int(action)
        reward = action + 0.1
        self._rewards.append(reward)
        self._t += 1
        terminated = self._t >= self._limit or (action == 1 and self._last_action == 1)
        self._last_action = action
        if terminated:
            KnownRewardEnv.episodes.append({"seed": self._seed, "rewards": list(self._rewards)})
        return np.array([self._t / 10], dtype=np.float32), reward, terminated, False, {}


class ResetRecorder(gym.Wrapper):
    """Records the seed and first observation of every reset (in-process envs only)."""

    def __init__(self, env: gym.Env, log: list) -> None:
        super().__init__(env)
        self.log = log

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.log.append((seed, np.array(obs, copy=True)))
        return obs, info


class EndlessEnv(gym.Env):
    """Never terminates nor truncates, and declares no time limit."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 1.0, False, False, {}


class ConstantRewardEnv(EndlessEnv):
    """Reward ``scale`` every step, fixed length ``length``, declared by no time limit but self-truncating."""

    def __init__(self, scale: float = 1.0, length: int = 5, nan_at: int | None = None) -> None:
        super().__init__()
        self.scale = scale
        self.length = length
        self.nan_at = nan_at
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._t = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self._t += 1
        reward = float("nan") if self.nan_at is not None and self._t == self.nan_at else self.scale
        return np.zeros(2, dtype=np.float32), reward, False, self._t >= self.length, {}


class GlobalRandomStartEnv(EndlessEnv):
    """Breaks GPG's contract: draws its start state from NumPy's global generator, ignoring ``reset(seed=...)``."""

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.random.uniform(-1.0, 1.0, size=2).astype(np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 1.0, False, True, {}


def with_seeded_spaces(env_class: type[gym.Env]) -> type[gym.Env]:
    """
    Subclass an env that samples its start from its spaces so that it honours ``reset(seed=...)``.

    SB3's identity and image test envs draw their first observation with ``action_space.sample()`` or
    ``observation_space.sample()``, whose generators ``reset(seed=...)`` does not seed: the subclass seeds them.
    (A wrapper would not do: GPG's GroupResetWrapper sits right above the base env, below other wrappers.)

    :param env_class: The env class.
    :return: The subclass.
    """

    class Seeded(env_class):  # type: ignore[valid-type, misc]
        def reset(self, *, seed: int | None = None, options: dict | None = None):
            if seed is not None:
                self.action_space.seed(seed)
                self.observation_space.seed(seed)
            return super().reset(seed=seed, options=options)

    Seeded.__name__ = f"Seeded{env_class.__name__}"
    return Seeded
