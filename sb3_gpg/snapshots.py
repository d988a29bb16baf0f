"""
Exact snapshots of an environment's state, so that several episodes can start from a state an episode reached.

Three ways to restore, chosen per environment by :func:`snapshot_method`:

- ``"mujoco"``: gymnasium's MuJoCo environments. MuJoCo's integration state (``mj_getState`` /
  ``mj_setState``: positions, velocities, actuator states, the solver's warm start, time...) is what the
  next ``mj_step`` integrates; the model-sized arrays that ``mj_step`` leaves behind (body positions,
  contact forces...) are what the environments' reward and observation code reads before stepping (Ant's
  ``xpos``). Both are saved, so that a restored environment steps bit for bit as the original.
  ``MujocoEnv.set_state(qpos, qvel)`` is not enough: it drops the warm start, and the run drifts.
- ``"copy"``: gymnasium's classic-control environments, whose whole state is a few Python and NumPy
  attributes: a deep copy of them.
- ``"replay"``: any other environment that honours ``reset(seed=...)`` and steps deterministically: reset
  with the episode's seed and replay its actions. Every replayed step is counted; a replay that ends on
  another observation than the one saved is refused with an error (the environment is not
  deterministic). ``copy.deepcopy`` is never used for such environments: of a Box2D or MuJoCo
  environment it silently builds a fresh, unreset one.

Outside the physics, a snapshot holds the episode's time step (so that a restored episode still ends at
the environment's time limit), the environment's ``np_random`` state and the observation it returned.
"""

import copy
import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

SNAPSHOT_METHODS = ("mujoco", "copy", "replay")

#: Attributes of a classic-control environment that are its renderer or its constants, not its state.
_NOT_STATE = frozenset({"screen", "clock", "surf", "viewer", "spec", "metadata", "observation_space", "action_space"})
#: MjData arrays whose size changes from step to step (constraints, contacts, islands): ``mj_step`` rebuilds them.
_PER_STEP_PREFIXES = ("efc_", "iefc_", "island_", "map_", "iacc", "ifrc_", "contact")


@dataclasses.dataclass(frozen=True)
class EnvSnapshot:
    """
    The state of an environment at one step of an episode (picklable, so that it can move between processes).

    :param method: How it restores, one of :data:`SNAPSHOT_METHODS`.
    :param step: Steps the episode had taken.
    :param seed: Reset seed of the episode (``None``: reset without a seed).
    :param observation: The observation the environment returned at that step.
    :param state: The method's state: MuJoCo's integration state and arrays, the copied attributes, or the actions.
    :param np_random_state: State of the environment's ``np_random`` bit generator.
    """

    method: str
    step: int
    seed: int | None
    observation: Any
    state: Any
    np_random_state: dict[str, Any] | None


def _is_mujoco(env: gym.Env) -> bool:
    data = getattr(env, "data", None)
    return type(data).__name__ == "MjData" and type(data).__module__.startswith("mujoco")


def snapshot_method(env: gym.Env) -> str:
    """
    How the state of ``env`` can be saved and restored exactly.

    :param env: The environment (its unwrapped environment decides).
    :return: ``"mujoco"``, ``"copy"`` (gymnasium's classic control) or ``"replay"`` (any other).
    """
    base = env.unwrapped
    if _is_mujoco(base):
        return "mujoco"
    if type(base).__module__.startswith("gymnasium.envs.classic_control"):
        return "copy"
    return "replay"


def _np_random_state(env: gym.Env) -> dict[str, Any] | None:
    # Env._np_random is None until the env is first seeded; the np_random property would create one.
    generator = getattr(env, "_np_random", None)
    return None if generator is None else copy.deepcopy(generator.bit_generator.state)


def _mujoco_arrays(data: Any) -> list[str]:
    names = []
    for name in dir(data):
        if name.startswith("_") or name.startswith(_PER_STEP_PREFIXES):
            continue
        if isinstance(getattr(data, name), np.ndarray):
            names.append(name)
    return names


def take_snapshot(
    env: gym.Env, method: str, step: int, seed: int | None, observation: Any, actions: list[Any] | None = None
) -> EnvSnapshot:
    """
    Save the state of ``env``.

    :param env: The environment, right below the wrapper that calls this (its unwrapped env is saved).
    :param method: One of :data:`SNAPSHOT_METHODS` (see :func:`snapshot_method`).
    :param step: Steps the episode has taken.
    :param seed: Reset seed of the episode.
    :param observation: The last observation the environment returned.
    :param actions: The episode's actions so far (``"replay"`` only).
    :return: The snapshot.
    """
    base = env.unwrapped
    if method == "mujoco":
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        integration = np.empty(mujoco.mj_stateSize(base.model, spec))
        mujoco.mj_getState(base.model, base.data, integration, spec)
        arrays = {name: np.array(getattr(base.data, name)) for name in _mujoco_arrays(base.data)}
        state: Any = (integration, arrays)
    elif method == "copy":
        state = copy.deepcopy({k: v for k, v in vars(base).items() if k not in _NOT_STATE})
    elif method == "replay":
        if seed is None:
            raise ValueError(
                "This episode was reset without a seed, so it cannot be replayed: GPG restores this env by resetting it "
                "with the episode's seed and replaying its actions. Reset it through GPG's GroupResetWrapper (armed seeds)."
            )
        state = tuple(actions or ())  # each action as the env received it (the wrapper keeps copies)
    else:
        raise ValueError(f"Unknown snapshot method {method!r}: use one of {SNAPSHOT_METHODS}")
    return EnvSnapshot(method, int(step), seed, copy.deepcopy(observation), state, _np_random_state(base))


def restore_snapshot(env: gym.Env, snapshot: EnvSnapshot, options: dict[str, Any] | None = None) -> tuple[Any, int]:
    """
    Put ``env`` in the state of ``snapshot``.

    :param env: The environment, right below the wrapper that calls this.
    :param snapshot: What :func:`take_snapshot` saved, from this env or another one of the same task.
    :param options: Reset options, passed to the reset that precedes the restore.
    :return: The snapshot's observation and the number of steps replayed (``"replay"``; 0 otherwise).
    """
    # A reset first, with the episode's seed: whatever the env keeps besides what is restored starts as the episode did.
    observation, _ = env.reset(seed=snapshot.seed, options=options)
    base = env.unwrapped
    replayed = 0
    if snapshot.method == "mujoco":
        import mujoco

        integration, arrays = snapshot.state
        for name, value in arrays.items():
            target = getattr(base.data, name)
            if target.shape == value.shape:
                np.copyto(target, value)
        mujoco.mj_setState(base.model, base.data, integration, mujoco.mjtState.mjSTATE_INTEGRATION)
    elif snapshot.method == "copy":
        vars(base).update(copy.deepcopy(snapshot.state))
    elif snapshot.method == "replay":
        for action in snapshot.state:
            observation, _, terminated, truncated, _ = env.step(action)
            replayed += 1
            if terminated or truncated:
                break
        if replayed != snapshot.step or not _equal(observation, snapshot.observation):
            raise ValueError(
                f"Replaying {snapshot.step} actions after reset(seed={snapshot.seed}) did not reach the saved state of "
                f"{_name(env)}: its transitions are not deterministic given the reset seed. To branch from its states, "
                "draw every random number from self.np_random (seeded by reset), or give up branching for this env."
            )
    if snapshot.np_random_state is not None:
        base.np_random.bit_generator.state = copy.deepcopy(snapshot.np_random_state)
    return copy.deepcopy(snapshot.observation), replayed


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def _name(env: gym.Env) -> str:
    spec = env.unwrapped.spec
    return repr(spec.id) if spec is not None else type(env.unwrapped).__name__
