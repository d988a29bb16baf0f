"""
RL Baselines3 Zoo (rl-zoo3) and Optuna glue: GPG as a zoo algorithm. The core never imports it.

* :mod:`~sb3_gpg.zoo.config`: where sb3-gpg's ``gpg.yml`` is, wherever the package is installed;
* :mod:`~sb3_gpg.zoo.sampler`: GPG's Optuna search space (rl-zoo3's sampler and converter);
* :mod:`~sb3_gpg.zoo.patches`: every change to rl-zoo3's or Optuna's behaviour, each naming the
  upstream gap it covers, all scoped to one command;
* :mod:`~sb3_gpg.zoo.cli`: the command lines (``python -m sb3_gpg.train``, ``sb3-gpg``, ...),
  which call rl-zoo3's own scripts, so they accept every flag those accept.

Importing this package changes nothing in rl-zoo3: :func:`register` adds GPG to rl-zoo3's
registries, and the command lines call it where they start.
"""

try:
    import optuna  # noqa: F401
    import rl_zoo3  # noqa: F401
except ModuleNotFoundError as error:  # pragma: no cover - depends on the installed extras
    # Still a ModuleNotFoundError naming the missing module, which sb3_gpg.cli.zoo_cli reads.
    raise ModuleNotFoundError(
        f"sb3_gpg.zoo needs rl-zoo3 and Optuna ({error}): install the zoo extra, "
        '`pip install ".[zoo]"` in a checkout of sb3-gpg',
        name=error.name,
    ) from error

from sb3_gpg.zoo.cli import command_line, main, register, run, train_args, with_default_algo
from sb3_gpg.zoo.config import ALGO, CONFIG_FILES, config_path, hyperparams_dir
from sb3_gpg.zoo.patches import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    heartbeat_storage,
    pass_trial_zero,
    study_heartbeats,
    tunable_n_envs,
)
from sb3_gpg.zoo.sampler import convert_gpg_params, sample_gpg_params, suggest_n_envs

__all__ = [
    "ALGO",
    "CONFIG_FILES",
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "command_line",
    "config_path",
    "convert_gpg_params",
    "heartbeat_storage",
    "hyperparams_dir",
    "main",
    "pass_trial_zero",
    "register",
    "run",
    "sample_gpg_params",
    "study_heartbeats",
    "suggest_n_envs",
    "train_args",
    "tunable_n_envs",
    "with_default_algo",
]
