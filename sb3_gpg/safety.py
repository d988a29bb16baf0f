"""
Hardening around GPG that is not the algorithm: clear errors for bad input, atomic saves, damaged files.

- :func:`refuse_ppo_kwargs`: PPO keyword arguments passed to GPG get an error saying what GPG uses instead;
- :func:`check_finite_step` and :func:`check_episode_steps`: NaN/inf from an env and episodes that never end;
- :func:`save_atomically` and :func:`check_model_file`: a killed save never leaves a truncated checkpoint, and
  a damaged file or another algorithm's file gets a clear error instead of a pickle traceback.
"""

import contextlib
import io
import math
import os
import pathlib
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.save_util import load_from_zip_file

from sb3_gpg import estimator

#: Errors that reading a damaged zip file raises (zipfile, torch.load, pickle).
CORRUPT_FILE_ERRORS = (zipfile.BadZipFile, EOFError, OSError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError)

#: An episode longer than this, in an env that declares no time limit, is taken to never end.
RUNAWAY_EPISODE_STEPS = 100_000

_NO_CRITIC = "GPG has no critic (no value network, no value loss)"
#: PPO's keyword arguments that GPG does not take, with what GPG uses instead.
PPO_ONLY_KWARGS = {
    "n_steps": "GPG collects whole episodes, not a fixed number of steps per env: a rollout is n_groups * group_size "
    "episodes. Set group_size (episodes per group, e.g. 8) and n_groups (groups per rollout, or None)",
    "gae_lambda": f"{_NO_CRITIC}, so no GAE: advantages are Monte Carlo returns minus their group's bin mean "
    "(choose the bins with binning and bin_width)",
    "vf_coef": f"{_NO_CRITIC}: remove vf_coef",
    "clip_range_vf": f"{_NO_CRITIC}: remove clip_range_vf (clip_range clips the policy ratio as in PPO)",
    "rollout_buffer_class": "GPG stores whole episodes in its own GroupRolloutBuffer: remove rollout_buffer_class",
    "rollout_buffer_kwargs": "GPG stores whole episodes in its own GroupRolloutBuffer: remove rollout_buffer_kwargs",
}


def refuse_ppo_kwargs(kwargs: dict[str, Any]) -> None:
    """
    Refuse keyword arguments GPG does not take, saying what GPG uses instead of PPO's.

    :param kwargs: The keyword arguments GPG's signature did not match.
    """
    for name in kwargs:
        if name in PPO_ONLY_KWARGS:
            raise TypeError(f"GPG does not take PPO's {name}={kwargs[name]!r}: {PPO_ONLY_KWARGS[name]}.")
    if kwargs:
        raise TypeError(f"GPG.__init__() got unexpected keyword arguments {sorted(kwargs)}")


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """
    Refuse a value that is not an integer >= ``minimum`` (booleans included).

    :param name: Parameter name, for the error message.
    :param value: Value to check.
    :param minimum: Smallest value allowed.
    :return: ``value`` as an int.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_branching(branch_horizon: Any, branch_interval: Any) -> tuple[int | None, int | None]:
    """
    Refuse a branch horizon or interval GPG cannot use; fill in the default interval.

    :param branch_horizon: GPG's ``branch_horizon``.
    :param branch_interval: GPG's ``branch_interval``.
    :return: The horizon and interval (``None`` and ``None`` without branching).
    """
    if branch_horizon is None:
        if branch_interval is not None:
            raise ValueError(
                f"branch_interval={branch_interval!r} needs branch_horizon: set branch_horizon (the steps each member "
                "runs from its branch point, e.g. 200) or remove branch_interval"
            )
        return None, None
    horizon = check_positive_int("branch_horizon", branch_horizon)
    interval = max(1, horizon // 2) if branch_interval is None else check_positive_int("branch_interval", branch_interval)
    if interval > horizon:
        raise ValueError(
            f"branch_interval={interval} is larger than branch_horizon={horizon}: a member's trained steps must lie "
            f"within its horizon. Use branch_interval <= {horizon} (default: branch_horizon // 2)."
        )
    return horizon, interval


def check_group_args(
    group_size: int, binning: Any, bin_eps: Any, baseline: Any, baseline_kwargs: Any, normalize_advantage: Any
) -> None:
    """
    Refuse a group size, binning, grid width or baseline with which GPG cannot learn.

    :param group_size: GPG's ``group_size`` (an integer >= 1, checked before).
    :param binning: GPG's ``binning``.
    :param bin_eps: GPG's ``bin_eps``.
    :param baseline: GPG's ``baseline``.
    :param baseline_kwargs: GPG's ``baseline_kwargs``.
    :param normalize_advantage: GPG's ``normalize_advantage``.
    """
    estimator.check_baseline(baseline, baseline_kwargs)
    if (baseline_kwargs or {}).get("per_bin_std") and normalize_advantage:
        raise ValueError(
            "baseline_kwargs={'per_bin_std': True} with normalize_advantage=True normalizes the advantages twice: "
            "each by the std of its bin's returns (GRPO), then each minibatch to mean 0 and std 1, which undoes the "
            "per-bin scale. per_bin_std replaces the per-minibatch normalization: set normalize_advantage=False."
        )
    if not (isinstance(bin_eps, (int, float)) and math.isfinite(bin_eps) and bin_eps > 0):
        raise ValueError(f"bin_eps must be a finite number > 0 (the grid width of binning='grid'), got {bin_eps!r}")
    if not (callable(binning) or binning in estimator.BINNINGS):
        raise ValueError(
            f"binning={binning!r} is unknown: use one of {estimator.BINNINGS} or a callable f(observations, timesteps)"
        )
    if group_size < 2:
        raise ValueError(
            f"group_size={group_size}: no bin can ever hold two returns. Bins are scoped to a group and, under the "
            "first-visit rule, receive at most one return per episode, so with a single episode per group every "
            "advantage is zero and nothing is learned, whatever the binning. Use group_size >= 2 (8 is a good default)."
        )


SUPPORTED_ACTION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
SUPPORTED_OBSERVATION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict)


def check_spaces(observation_space: spaces.Space, action_space: spaces.Space, binning: Any) -> None:
    """
    Refuse spaces GPG cannot handle, and binnings that do not fit the observation space.

    :param observation_space: The env's observation space.
    :param action_space: The env's action space.
    :param binning: GPG's ``binning`` argument.
    """
    if not isinstance(action_space, SUPPORTED_ACTION_SPACES):
        raise ValueError(
            f"GPG does not support the action space {action_space} of this env: supported action spaces are "
            "Box, Discrete, MultiDiscrete and MultiBinary (as PPO). Flatten or re-encode the actions with a wrapper."
        )
    if not isinstance(observation_space, SUPPORTED_OBSERVATION_SPACES):
        raise ValueError(
            f"GPG does not support the observation space {observation_space} of this env: supported are Box "
            "(vectors and images), Discrete, MultiDiscrete, MultiBinary and Dict of those (as PPO)."
        )
    if binning == "state" and not isinstance(observation_space, spaces.Discrete):
        raise ValueError(
            f"binning='state' needs a Discrete observation space, got {observation_space}: "
            "use binning='grid' (with bin_eps) for continuous observations, or 'timestep'"
        )
    if binning == "grid" and not isinstance(observation_space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete)):
        raise ValueError(f"binning='grid' needs array observations, got {observation_space}: pass a callable binning instead")


def check_finite_step(rewards: np.ndarray, obs: Any, active: np.ndarray, step: int) -> None:
    """
    Refuse NaN/inf rewards (of the envs playing an episode of the rollout) and observations.

    :param rewards: Rewards of a vectorised step.
    :param obs: Observations after the step (array or dict of arrays).
    :param active: Which envs play an episode of the rollout.
    :param step: Step number within the rollout, for the error message.
    """
    bad = ~np.isfinite(rewards) & active
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Env {i} returned a non-finite reward ({rewards[i]}) at step {step} of the rollout. GPG's Monte Carlo "
            "returns would all become NaN. Fix the env, or wrap it in VecCheckNan(env, raise_exception=True) to find "
            "the cause (VecNormalize rescales rewards but cannot repair NaN/inf)."
        )
    for array in obs.values() if isinstance(obs, dict) else [obs]:
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating):
            finite = np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1)
            if not finite.all():
                i = int(np.flatnonzero(~finite)[0])
                raise ValueError(
                    f"Env {i} returned a non-finite observation at step {step} of the rollout. Fix the env, or wrap "
                    "it in VecCheckNan(env, raise_exception=True) to find the cause; VecNormalize cannot repair NaN/inf."
                )


def check_episode_steps(episode_steps: np.ndarray, step_limit: int | None) -> None:
    """
    Refuse an episode that has run past the env's time limit (or :data:`RUNAWAY_EPISODE_STEPS` without one).

    :param episode_steps: Steps played so far in each env's current episode.
    :param step_limit: The longest episode the env allows, or ``None`` when it declares no time limit.
    """
    limit = step_limit or RUNAWAY_EPISODE_STEPS
    if episode_steps.max() > limit:
        i = int(np.argmax(episode_steps))
        raise RuntimeError(
            f"The episode of env {i} has run {episode_steps[i]} steps without terminating or truncating, and the "
            "env declares no time limit (no TimeLimit wrapper, no spec.max_episode_steps). GPG needs whole "
            "episodes: pass max_episode_steps=N to GPG, or wrap the env in gymnasium.wrappers.TimeLimit."
        )


def save_atomically(save: Callable[[io.BufferedIOBase], None], path: str | pathlib.Path | io.BufferedIOBase) -> None:
    """
    Save to ``path`` atomically: the file there is either the previous one or the new one.

    The model is written to a temporary file in the same directory, then renamed over ``path``, so a
    process killed while saving never leaves a truncated checkpoint.

    :param save: Writes the model to an open binary file (SB3's ``BaseAlgorithm.save``).
    :param path: Path of the file (``.zip`` is added if it has no suffix, as SB3 does), or a buffer.
    """
    if isinstance(path, io.BufferedIOBase):
        save(path)
        return
    path = pathlib.Path(path)
    if path.suffix == "":
        path = path.with_suffix(".zip")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            save(file)  # type: ignore[arg-type]
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise


def _corrupt(path: Any, error: BaseException | None) -> ValueError:
    cause = "" if error is None else f" ({type(error).__name__}: {error})"
    return ValueError(
        f"Could not read a model from {path!r}: the file is corrupt or truncated{cause}. "
        "Load an earlier checkpoint (GPG.save() writes atomically, so the previous file is intact)."
    )


@contextlib.contextmanager
def corrupt_file_errors(path: Any) -> Iterator[None]:
    """
    Turn the errors a damaged model file raises while loading into one clear error (a missing file stays one).

    :param path: The file being read, for the message.
    """
    try:
        yield
    except FileNotFoundError:
        raise
    except CORRUPT_FILE_ERRORS as error:
        raise _corrupt(path, error) from error


def check_model_file(
    path: str | pathlib.Path | io.BufferedIOBase, custom_objects: dict[str, Any] | None, policy_base: type
) -> None:
    """
    Refuse a damaged file, and a file saved by another algorithm, before SB3 loads it.

    :param path: The model file, or a buffer (rewound afterwards).
    :param custom_objects: As for SB3's ``load``.
    :param policy_base: The policy class the file's policy must derive from.
    """
    with corrupt_file_errors(path):
        data, _, _ = load_from_zip_file(path, device="cpu", custom_objects=custom_objects)
    if data is None or "policy_class" not in data:
        raise _corrupt(path, None)
    policy_class = data["policy_class"]
    if not (isinstance(policy_class, type) and issubclass(policy_class, policy_base)):
        name = getattr(policy_class, "__name__", repr(policy_class))
        raise ValueError(
            f"{path!r} was not saved by GPG (its policy is {name}): load it with the algorithm that saved it, "
            "for example stable_baselines3.PPO.load()."
        )
    if isinstance(path, io.BufferedIOBase):
        path.seek(0)
