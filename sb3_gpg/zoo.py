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
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

try:
    import optuna
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
    from rl_zoo3.utils import ALGOS, linear_schedule
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
N_ENVS = (1, 2, 4, 8, 16, 32)
GROUP_SIZES = (2, 4, 8, 16, 32)
EPISODES_PER_ENV = (1, 2, 4)
BINNINGS = ("timestep", "none")
BIN_WIDTHS = (1, 2, 5, 10, 20)
LR_SCHEDULES = ("constant", "linear")
N_EPOCHS = (1, 5, 10, 20)
CLIP_RANGES = (0.1, 0.2, 0.3, 0.4)
TARGET_KLS = (None, 0.01, 0.02, 0.03, 0.05)
NET_WIDTHS = (64, 128, 256, 512)
#: Named architectures of the first search space (``net_arch``), still read by :func:`convert_gpg_params`.
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


def suggest_n_envs(trial: optuna.Trial) -> int:
    """
    Suggest a trial's number of training envs, from :data:`N_ENVS`.

    :func:`tunable_n_envs` calls it before rl-zoo3 builds the trial's envs, and
    :func:`sample_gpg_params` calls it again: the same name and choices give back the same value.

    :param trial: Optuna trial
    :return: the number of envs
    """
    return int(trial.suggest_categorical("n_envs", list(N_ENVS)))


def sample_gpg_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sample GPG hyperparameters, with the signature of rl-zoo3's ``HYPERPARAMS_SAMPLER`` entries.

    Only valid combinations are proposed: ``group_size >= 2``, and the rollout size is sampled as
    ``episodes_per_env`` (episodes each env plays per rollout), so that
    ``n_groups = ceil(episodes_per_env * n_envs / group_size)`` always gives
    ``n_groups * group_size >= n_envs``. ``n_envs`` is a parameter of the trial, so that
    :func:`convert_gpg_params` rebuilds ``n_envs`` and ``n_groups`` from a stored trial
    (``--trial-id``): when the trial has already chosen it (:func:`tunable_n_envs`), it is suggested
    again from :data:`N_ENVS`; otherwise it is recorded as the single choice ``n_envs`` (then a study
    refuses workers with another ``n_envs``). ``bin_width`` is sampled only for ``"timestep"``
    binning, and ``log_std_init`` only for Box action spaces (``n_actions > 0``). The learning rate
    is constant or decays linearly to 0 (rl-zoo3's ``linear_schedule``).

    :param trial: Optuna trial
    :param n_actions: Action dimension of a Box action space, 0 otherwise (as rl-zoo3 passes it)
    :param n_envs: Number of training envs that rl-zoo3 builds for the trial
    :param additional_args: rl-zoo3's extra arguments (HER settings; unused)
    :return: keyword arguments for :class:`~sb3_gpg.GPG`
    """
    if "n_envs" in trial.params:
        chosen = suggest_n_envs(trial)
        if chosen != n_envs:
            raise RuntimeError(
                f"trial {trial.number} chose n_envs={chosen} but rl-zoo3 built {n_envs} envs: set the manager's "
                "n_envs from the trial before its envs are built (sb3_gpg.zoo.tunable_n_envs)."
            )
    else:
        trial.suggest_categorical("n_envs", [int(n_envs)])
    group_size = trial.suggest_categorical("group_size", list(GROUP_SIZES))
    trial.suggest_categorical("episodes_per_env", list(EPISODES_PER_ENV))
    if trial.suggest_categorical("binning", list(BINNINGS)) == "timestep":
        trial.suggest_categorical("bin_width", list(BIN_WIDTHS))
    trial.suggest_float("learning_rate", 1e-5, 0.003, log=True)
    trial.suggest_categorical("lr_schedule", list(LR_SCHEDULES))
    trial.suggest_categorical("n_epochs", list(N_EPOCHS))
    trial.suggest_int("batch_size_pow", 5, 10)
    trial.suggest_categorical("clip_range", list(CLIP_RANGES))
    trial.suggest_categorical("target_kl", list(TARGET_KLS))
    trial.suggest_float("ent_coef", 1e-8, 0.1, log=True)
    trial.suggest_float("one_minus_gamma", 0.0001, 0.1, log=True)
    trial.suggest_float("max_grad_norm", 0.3, 2.0)
    trial.suggest_categorical("net_width", list(NET_WIDTHS))
    trial.suggest_int("net_depth", 1, 3)
    trial.suggest_categorical("activation_fn", ["tanh", "relu"])
    trial.suggest_categorical("ortho_init", [True, False])
    if n_actions > 0:
        trial.suggest_float("log_std_init", -3.0, 0.0)

    hyperparams = convert_gpg_params(trial.params)
    # n_envs is an rl-zoo3 setting (read back by --trial-id), not an argument of GPG.
    del hyperparams["n_envs"]
    # rl-zoo3 turns the schedule string of a configuration into a schedule, but hands the sampler's
    # result to the model as it is.
    if isinstance(hyperparams["learning_rate"], str):
        hyperparams["learning_rate"] = linear_schedule(hyperparams["learning_rate"].split("_", 1)[1])
    # Show the real values in the study (trials_dataframe, dashboards).
    trial.set_user_attr("n_groups", hyperparams["n_groups"])
    trial.set_user_attr("episodes_per_rollout", hyperparams["n_groups"] * group_size)
    trial.set_user_attr("batch_size", hyperparams["batch_size"])
    trial.set_user_attr("gamma", hyperparams["gamma"])
    trial.set_user_attr("net_arch", hyperparams["policy_kwargs"]["net_arch"])
    return hyperparams


def convert_gpg_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn the parameters of a GPG trial into rl-zoo3 hyperparameters (``HYPERPARAMS_CONVERTER``).

    rl-zoo3 calls it on ``study.trials[trial_id].params`` for ``--trial-id``; the result updates
    the hyperparameters read from the configuration file, so it is written as a configuration
    entry: ``n_envs`` when known, and a linear learning-rate schedule as ``"lin_<initial value>"``.
    Parameters it does not know are passed through unchanged; the named ``net_arch`` of studies
    made with the first search space is still understood.

    :param sampled_params: Trial parameters, as suggested by :func:`sample_gpg_params`
    :return: hyperparameters: GPG arguments, ``policy_kwargs`` and ``n_envs`` when known
    """
    hyperparams = dict(sampled_params)
    if "one_minus_gamma" in hyperparams:
        hyperparams["gamma"] = 1.0 - hyperparams.pop("one_minus_gamma")
    if "batch_size_pow" in hyperparams:
        hyperparams["batch_size"] = 2 ** int(hyperparams.pop("batch_size_pow"))
    if hyperparams.pop("lr_schedule", "constant") == "linear":
        hyperparams["learning_rate"] = f"lin_{float(hyperparams['learning_rate'])!r}"
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
    if "net_width" in hyperparams or "net_depth" in hyperparams:
        width, depth = int(hyperparams.pop("net_width", 64)), int(hyperparams.pop("net_depth", 2))
        policy_kwargs["net_arch"] = [width] * depth
    if "activation_fn" in hyperparams:
        policy_kwargs["activation_fn"] = ACTIVATION_FNS[hyperparams.pop("activation_fn")]
    for key in ("ortho_init", "log_std_init"):
        if key in hyperparams:
            policy_kwargs[key] = hyperparams.pop(key)
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
    with warnings.catch_warnings():
        # Optuna marks heartbeat_interval experimental and says so on every run; the feature is
        # what we want (and tested with a killed worker), so that one warning is only noise.
        warnings.filterwarnings("ignore", message=r".*``heartbeat_interval``", category=optuna.exceptions.ExperimentalWarning)
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
def tunable_n_envs() -> Iterator[None]:
    """
    While active, each ``--optimize`` trial of a GPG algorithm chooses its number of envs (:data:`N_ENVS`).

    Upstream gap (rl-zoo3 2.9.2): ``ExperimentManager.objective`` builds a trial's envs and its
    evaluation frequency from ``self.n_envs``, the configuration's value, and gives the sampler no
    way to change it. This is the one place that wraps the objective, for the duration of a
    command: for the algorithms of :data:`CONFIG_FILES`, the trial first suggests ``n_envs``
    (:func:`suggest_n_envs`) and sets it on the manager, then rl-zoo3's objective runs unchanged;
    :func:`sample_gpg_params` suggests the same parameter with the same choices and so gets the same
    value. ``-params n_envs:N`` (rl-zoo3's ``--hyperparams``) keeps ``n_envs`` fixed at ``N``.
    Outside ``--optimize`` the objective never runs, so training and ``--trial-id`` are unaffected.
    """
    from rl_zoo3.exp_manager import ExperimentManager

    original = ExperimentManager.objective

    def objective(self: ExperimentManager, trial: optuna.Trial) -> float:
        if self.algo in CONFIG_FILES and "n_envs" not in (self.custom_hyperparams or {}):
            if self.n_jobs > 1:
                raise ValueError(
                    f"--n-jobs {self.n_jobs}: the trials of one process share one ExperimentManager, so they cannot "
                    "each choose n_envs. Start several processes on one --storage instead, or fix n_envs "
                    "with -params n_envs:N."
                )
            self.n_envs = suggest_n_envs(trial)
        return original(self, trial)

    ExperimentManager.objective = objective  # type: ignore[method-assign]
    try:
        yield
    finally:
        ExperimentManager.objective = original  # type: ignore[method-assign]


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
