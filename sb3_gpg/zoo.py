"""
RL Baselines3 Zoo (rl-zoo3) integration: GPG as a zoo algorithm.

rl-zoo3 has no plugin discovery. Its scripts look algorithms up in three module-level dicts,
``rl_zoo3.utils.ALGOS`` (the ``--algo`` choices, read when a script builds its parser),
``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` (``--optimize``) and
``rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER`` (``--trial-id``), and it reads an algorithm's
default hyperparameters from ``hyperparams/<algo>.yml`` inside its own package. This module is
the one place that bridges both, through public objects only:

* :func:`register` adds ``"gpg"`` to the three dicts (idempotent; also done on import);
* :func:`train_args` rewrites a training command line so that GPG's default configuration is
  sb3-gpg's ``hyperparams/gpg.yml`` (an explicit ``--conf-file``, rl-zoo3's public option);
* :func:`sample_gpg_params` / :func:`convert_gpg_params` are GPG's Optuna search space.

The entry points :mod:`sb3_gpg.train`, :mod:`sb3_gpg.enjoy`, :mod:`sb3_gpg.record_video` and
``sb3-gpg`` (:mod:`sb3_gpg.cli`) call rl-zoo3's own scripts after this set-up, so they accept
every flag rl-zoo3's scripts accept, for GPG and for rl-zoo3's algorithms alike.
"""

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

try:
    import optuna
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
    from rl_zoo3.utils import ALGOS
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"sb3_gpg.zoo needs rl-zoo3 and Optuna ({error}): install them with `pip install sb3-gpg[zoo]`"
    ) from error
from torch import nn

from sb3_gpg.gpg import GPG

#: Name of GPG in rl-zoo3's ``--algo`` choices.
ALGO = "gpg"

#: The default configuration file of each algorithm this package adds to rl-zoo3.
CONFIG_FILES: dict[str, str] = {ALGO: "gpg.yml"}

#: Optuna search space of :func:`sample_gpg_params` (choices of the categorical parameters).
GROUP_SIZES = (2, 4, 8, 16, 32)
EPISODES_PER_ENV = (1, 2, 4)
BINNINGS = ("timestep", "none")
BIN_WIDTHS = (1, 2, 5, 10, 20)
N_EPOCHS = (1, 5, 10, 20)
CLIP_RANGES = (0.1, 0.2, 0.3, 0.4)
NET_ARCHS: dict[str, list[int]] = {"tiny": [64], "small": [64, 64], "medium": [256, 256]}
ACTIVATION_FNS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def hyperparams_dir() -> Path:
    """
    Folder holding sb3-gpg's rl-zoo3 configuration files (``gpg.yml``).

    An installed wheel carries the repository's top-level ``hyperparams/`` folder as
    ``sb3_gpg/hyperparams/`` (package data); a source checkout or an editable install finds it
    beside the package. Either way the result does not depend on the working directory.

    Returns
    -------
    Path
        Absolute path of the folder.

    Raises
    ------
    FileNotFoundError
        If neither location holds the configuration files.
    """
    package = Path(__file__).resolve().parent
    candidates = (package / "hyperparams", package.parent / "hyperparams")
    for folder in candidates:
        if all((folder / name).is_file() for name in CONFIG_FILES.values()):
            return folder
    raise FileNotFoundError(
        f"sb3-gpg's hyperparameter files ({', '.join(CONFIG_FILES.values())}) were found in none of "
        f"{[str(folder) for folder in candidates]}: the package is installed without its data."
    )


def config_path(algo: str = ALGO) -> Path:
    """
    Default rl-zoo3 configuration file of an algorithm added by this package.

    Parameters
    ----------
    algo : str
        Algorithm name, as given to ``--algo``.

    Returns
    -------
    Path
        Absolute path of its ``.yml`` file.

    Raises
    ------
    KeyError
        If ``algo`` is not one of this package's algorithms.
    """
    return hyperparams_dir() / CONFIG_FILES[algo]


# ----------------------------------------------------------------------------- Optuna


def sample_gpg_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sample GPG hyperparameters, with the signature of rl-zoo3's ``HYPERPARAMS_SAMPLER`` entries.

    Only valid combinations are proposed: ``group_size >= 2``, and the rollout size is sampled as
    ``episodes_per_env`` (episodes each env plays per rollout) so that
    ``n_groups = ceil(episodes_per_env * n_envs / group_size)`` always gives
    ``n_groups * group_size >= n_envs``. ``n_envs`` is stored as a single-choice parameter so that
    :func:`convert_gpg_params` can rebuild ``n_groups`` from a stored trial (``--trial-id``), and so
    that Optuna refuses to mix workers with different ``n_envs`` in one study. Binning is
    ``"timestep"`` (with ``bin_width``) or ``"none"``, the two that suit every observation space.

    Parameters
    ----------
    trial : optuna.Trial
        Optuna trial.
    n_actions : int
        Action dimension of Box action spaces (unused: GPG has no action noise).
    n_envs : int
        Number of training environments of the trial.
    additional_args : dict
        rl-zoo3's extra arguments (HER settings; unused).

    Returns
    -------
    dict[str, Any]
        Keyword arguments for :class:`~sb3_gpg.GPG`.
    """
    sampled = {
        "n_envs": trial.suggest_categorical("n_envs", [int(n_envs)]),
        "group_size": trial.suggest_categorical("group_size", list(GROUP_SIZES)),
        "episodes_per_env": trial.suggest_categorical("episodes_per_env", list(EPISODES_PER_ENV)),
        "binning": trial.suggest_categorical("binning", list(BINNINGS)),
        "bin_width": trial.suggest_categorical("bin_width", list(BIN_WIDTHS)),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 0.003, log=True),
        "n_epochs": trial.suggest_categorical("n_epochs", list(N_EPOCHS)),
        "batch_size_pow": trial.suggest_int("batch_size_pow", 5, 10),
        "clip_range": trial.suggest_categorical("clip_range", list(CLIP_RANGES)),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.1, log=True),
        "one_minus_gamma": trial.suggest_float("one_minus_gamma", 0.0001, 0.1, log=True),
        "net_arch": trial.suggest_categorical("net_arch", list(NET_ARCHS)),
        "activation_fn": trial.suggest_categorical("activation_fn", ["tanh", "relu"]),
    }
    hyperparams = convert_gpg_params(sampled)
    # n_envs is an rl-zoo3 setting (read back by --trial-id), not an argument of GPG.
    del hyperparams["n_envs"]
    # Show the real values in the study (trials_dataframe, dashboards).
    trial.set_user_attr("n_groups", hyperparams["n_groups"])
    trial.set_user_attr("episodes_per_rollout", hyperparams["n_groups"] * hyperparams["group_size"])
    trial.set_user_attr("batch_size", hyperparams["batch_size"])
    trial.set_user_attr("gamma", hyperparams["gamma"])
    return hyperparams


def convert_gpg_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn the parameters of a GPG trial into rl-zoo3 hyperparameters (``HYPERPARAMS_CONVERTER``).

    rl-zoo3 calls it on ``study.trials[trial_id].params`` for ``--trial-id``; the result updates
    the hyperparameters read from the configuration file (so it may hold ``n_envs``). Parameters
    it does not know are passed through unchanged.

    Parameters
    ----------
    sampled_params : dict[str, Any]
        Trial parameters, as suggested by :func:`sample_gpg_params`.

    Returns
    -------
    dict[str, Any]
        Hyperparameters: GPG arguments, ``policy_kwargs`` and ``n_envs`` when known.
    """
    hyperparams = dict(sampled_params)
    if "one_minus_gamma" in hyperparams:
        hyperparams["gamma"] = 1.0 - hyperparams.pop("one_minus_gamma")
    if "batch_size_pow" in hyperparams:
        hyperparams["batch_size"] = 2 ** int(hyperparams.pop("batch_size_pow"))
    episodes_per_env = hyperparams.pop("episodes_per_env", None)
    if episodes_per_env is not None and "group_size" in hyperparams:
        # Without n_envs, n_groups stays None: GPG then derives it from the env count.
        if "n_envs" in hyperparams:
            hyperparams["n_groups"] = max(1, math.ceil(episodes_per_env * hyperparams["n_envs"] / hyperparams["group_size"]))
        else:
            hyperparams["n_groups"] = None
    policy_kwargs: dict[str, Any] = {}
    if "net_arch" in hyperparams:
        policy_kwargs["net_arch"] = list(NET_ARCHS[hyperparams.pop("net_arch")])
    if "activation_fn" in hyperparams:
        policy_kwargs["activation_fn"] = ACTIVATION_FNS[hyperparams.pop("activation_fn")]
    if policy_kwargs:
        hyperparams["policy_kwargs"] = policy_kwargs
    return hyperparams


# ----------------------------------------------------------------------------- registration


def register() -> None:
    """Add GPG, its Optuna sampler and its converter to rl-zoo3's registries (idempotent)."""
    ALGOS[ALGO] = GPG
    HYPERPARAMS_SAMPLER[ALGO] = sample_gpg_params
    HYPERPARAMS_CONVERTER[ALGO] = convert_gpg_params


# ----------------------------------------------------------------------------- command lines


class _PeekError(Exception):
    """A command line that the peek parser cannot read: rl-zoo3's own parser will report it."""


class _PeekParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _PeekError(message)


def _peek(args: Sequence[str], options: dict[tuple[str, ...], type]) -> argparse.Namespace | None:
    """
    Read a few options of an rl-zoo3 command line, ignoring the others.

    Parameters
    ----------
    args : Sequence[str]
        Command-line arguments (without the program name).
    options : dict[tuple[str, ...], type]
        Option strings (as rl-zoo3 spells them) mapped to their type.

    Returns
    -------
    argparse.Namespace | None
        The values (``None`` where absent), or ``None`` if the line cannot be read.
    """
    parser = _PeekParser(add_help=False)
    for flags, kind in options.items():
        parser.add_argument(*flags, type=kind, default=None)
    try:
        namespace, _ = parser.parse_known_args(list(args))
    except _PeekError:
        return None
    return namespace


def with_default_algo(args: Sequence[str], algo: str = ALGO) -> list[str]:
    """
    Make ``algo`` the default ``--algo`` of an rl-zoo3 command line (rl-zoo3's default is PPO).

    Parameters
    ----------
    args : Sequence[str]
        Command-line arguments (without the program name).
    algo : str
        Algorithm used when the line names none.

    Returns
    -------
    list[str]
        The arguments, with ``--algo algo`` in front when absent.
    """
    peeked = _peek(args, {("--algo",): str})
    if peeked is not None and peeked.algo is None:
        return ["--algo", algo, *args]
    return list(args)


def _study_size(storage: str, study_name: str) -> int | None:
    if storage.endswith(".log"):
        # rl-zoo3 opens ".log" storages as Optuna journal files; do the same.
        backend = optuna.storages.journal.JournalFileBackend(storage)
        study = optuna.load_study(storage=optuna.storages.JournalStorage(backend), study_name=study_name)
    else:
        study = optuna.load_study(storage=storage, study_name=study_name)
    return len(study.trials)


def train_args(args: Sequence[str]) -> list[str]:
    """
    Adapt a training command line to GPG, before rl-zoo3's ``train()`` parses it.

    * ``--algo`` defaults to ``gpg``.
    * For GPG (and any algorithm of :data:`CONFIG_FILES`), ``--conf-file`` defaults to sb3-gpg's
      configuration file instead of a path inside rl-zoo3's package; other algorithms keep
      rl-zoo3's configurations.
    * ``--trial-id 0`` is passed as the equivalent negative index: rl-zoo3 2.9.2 reloads a trial
      only when ``trial_id`` is truthy (and then takes ``study.trials[trial_id]``), so trial 0 would
      silently be ignored. The index is taken from the study's current size; a trial added by a
      running worker between this count and rl-zoo3's own read would shift it, so reload trial 0
      once its workers have stopped.

    Parameters
    ----------
    args : Sequence[str]
        Command-line arguments (without the program name).

    Returns
    -------
    list[str]
        The arguments to give rl-zoo3's ``train()``.
    """
    args = with_default_algo(args)
    peeked = _peek(
        args,
        {
            ("--algo",): str,
            ("-conf", "--conf-file"): str,
            ("--storage",): str,
            ("--study-name",): str,
            ("--trial-id",): int,
        },
    )
    if peeked is None:
        return args
    if peeked.algo in CONFIG_FILES and peeked.conf_file is None:
        args = ["--conf-file", str(config_path(peeked.algo)), *args]
    if peeked.trial_id == 0 and peeked.storage and peeked.study_name:
        n_trials = _study_size(peeked.storage, peeked.study_name)
        if n_trials:
            # The last --trial-id given wins in argparse.
            args = [*args, f"--trial-id=-{n_trials}"]
    return args


#: Seconds between a running trial's heartbeats, and silence after which another worker marks it failed.
#: Overridable with the environment variables SB3_GPG_OPTUNA_HEARTBEAT and SB3_GPG_OPTUNA_GRACE.
HEARTBEAT_INTERVAL = 60
GRACE_PERIOD = 180


def heartbeat_storage(storage: Any) -> Any:
    """
    Turn a database URL into an Optuna ``RDBStorage`` with heartbeats; leave anything else as it is.

    With heartbeats, each running trial records that its worker is alive. When a worker dies
    (SIGKILL, lost machine) its trial stops beating, and the next trial any other worker starts
    marks it ``FAIL`` (Optuna's ``fail_stale_trials``): the study stays usable and loses nothing else.

    Parameters
    ----------
    storage : Any
        What rl-zoo3 passes to ``optuna.create_study``: ``None``, a URL, or a storage object.

    Returns
    -------
    Any
        An ``RDBStorage`` with heartbeats for a database URL, else ``storage`` unchanged.
    """
    if not isinstance(storage, str) or storage.endswith(".log"):
        return storage
    return optuna.storages.RDBStorage(
        storage,
        heartbeat_interval=int(os.environ.get("SB3_GPG_OPTUNA_HEARTBEAT", HEARTBEAT_INTERVAL)),
        grace_period=int(os.environ.get("SB3_GPG_OPTUNA_GRACE", GRACE_PERIOD)),
    )


@contextlib.contextmanager
def study_heartbeats() -> Iterator[None]:
    """
    While active, studies that rl-zoo3 creates on a database get heartbeats (:func:`heartbeat_storage`).

    rl-zoo3 hands ``--storage`` to ``optuna.create_study`` as a plain URL, which gives no
    heartbeats, and offers no hook to change that. This is the one place that wraps Optuna's
    public ``create_study`` for the duration of a command, restoring it afterwards.
    """
    original = optuna.create_study

    def create_study(*args: Any, storage: Any = None, **kwargs: Any) -> optuna.Study:
        return original(*args, storage=heartbeat_storage(storage), **kwargs)

    optuna.create_study = create_study  # type: ignore[assignment]
    try:
        yield
    finally:
        optuna.create_study = original  # type: ignore[assignment]


@contextlib.contextmanager
def command_line(prog: str, args: Sequence[str]) -> Iterator[None]:
    """
    Run an rl-zoo3 script (which parses ``sys.argv``) on the given arguments, then restore ``sys.argv``.

    Parameters
    ----------
    prog : str
        Program name shown in usage and error messages.
    args : Sequence[str]
        Command-line arguments (without the program name).
    """
    saved = sys.argv
    sys.argv = [prog, *args]
    try:
        yield
    finally:
        sys.argv = saved


register()
