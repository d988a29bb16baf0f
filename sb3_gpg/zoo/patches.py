"""
Every change sb3-gpg makes to rl-zoo3's or Optuna's behaviour, each with the upstream gap it covers.

All of them are scoped to one command (context managers, or a rewrite of its arguments) and are
applied only by :mod:`sb3_gpg.zoo.cli`, where a command line starts; importing sb3-gpg changes
nothing. Versions: rl-zoo3 2.9.2, Optuna 5.

* :func:`pass_trial_zero`: rl-zoo3 ignores ``--trial-id 0``;
* :func:`study_heartbeats`: rl-zoo3 opens database studies without heartbeats;
* :func:`tunable_n_envs`: rl-zoo3 gives a sampler no way to choose a trial's number of envs.
"""

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import optuna
from rl_zoo3.exp_manager import ExperimentManager

from sb3_gpg.zoo.config import CONFIG_FILES
from sb3_gpg.zoo.sampler import suggest_n_envs

#: Seconds between a running trial's heartbeats, and silence after which another worker marks it failed.
#: Overridable with the environment variables SB3_GPG_OPTUNA_HEARTBEAT and SB3_GPG_OPTUNA_GRACE.
HEARTBEAT_INTERVAL = 60
GRACE_PERIOD = 180


def _load_study(storage: str, study_name: str) -> optuna.Study:
    if storage.endswith(".log"):
        # rl-zoo3 opens ".log" storages as Optuna journal files; do the same.
        backend = optuna.storages.journal.JournalFileBackend(storage)
        return optuna.load_study(storage=optuna.storages.JournalStorage(backend), study_name=study_name)
    return optuna.load_study(storage=storage, study_name=study_name)


def pass_trial_zero(args: Sequence[str], storage: str | None, study_name: str | None, trial_id: int | None) -> list[str]:
    """
    Make ``--trial-id 0`` reach rl-zoo3, as the equivalent negative index.

    Upstream gap (rl-zoo3 2.9.2): ``ExperimentManager.read_hyperparameters`` reloads a trial only
    when ``trial_id`` is truthy (then takes ``study.trials[trial_id]``), so trial 0 is silently
    ignored. The index is taken from the study's current size; a trial added by a running worker
    between this count and rl-zoo3's own read would shift it, so reload trial 0 once its workers
    have stopped.

    :param args: Training command line (without the program name)
    :param storage: Its ``--storage``
    :param study_name: Its ``--study-name``
    :param trial_id: Its ``--trial-id``
    :return: the arguments, with ``--trial-id=-N`` appended (the last one given wins) for trial 0
    :raises SystemExit: for an id the study does not hold, with the ids it does
    """
    if trial_id is None or not storage or not study_name:
        return list(args)
    n_trials = len(_load_study(storage, study_name).trials)
    # rl-zoo3 indexes the study's trials with it: an id outside them would end in a bare IndexError.
    if not -n_trials <= trial_id < n_trials:
        held = f"trials 0 to {n_trials - 1} (-1 is the last)" if n_trials else "no trial"
        raise SystemExit(f"--trial-id {trial_id}: study {study_name!r} in {storage} holds {held}; give one of those")
    return [*args, f"--trial-id=-{n_trials}"] if trial_id == 0 else list(args)


def heartbeat_storage(storage: Any) -> Any:
    """
    Turn a database URL into an Optuna ``RDBStorage`` with heartbeats; leave anything else as it is.

    With heartbeats, each running trial records that its worker is alive. When a worker dies
    (SIGKILL, lost machine) its trial stops beating, and the next trial any other worker starts
    marks it ``FAIL`` (Optuna's ``fail_stale_trials``): the study stays usable and loses nothing else.

    :param storage: What rl-zoo3 passes to ``optuna.create_study``: ``None``, a URL, or a storage object
    :return: an ``RDBStorage`` with heartbeats for a database URL, else ``storage`` unchanged
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

    Upstream gap (rl-zoo3 2.9.2): ``ExperimentManager.hyperparameters_optimization`` hands
    ``--storage`` to ``optuna.create_study`` as a plain URL, which gives no heartbeats, and offers
    no hook to change that. This wraps Optuna's public ``create_study`` for the duration of a
    command, restoring it afterwards.
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
    While active, each ``--optimize`` trial of a GPG algorithm chooses its number of envs.

    Upstream gap (rl-zoo3 2.9.2): ``ExperimentManager.objective`` builds a trial's envs and its
    evaluation frequency from ``self.n_envs``, the configuration's value, and gives the sampler no
    way to change it. This wraps the objective for the duration of a command: for the algorithms
    of :data:`~sb3_gpg.zoo.config.CONFIG_FILES`, the trial first suggests ``n_envs``
    (:func:`~sb3_gpg.zoo.sampler.suggest_n_envs`) and sets it on the manager, then rl-zoo3's
    objective runs unchanged; :func:`~sb3_gpg.zoo.sampler.sample_gpg_params` suggests the same
    parameter with the same choices and so gets the same value. ``-params n_envs:N`` (rl-zoo3's
    ``--hyperparams``) keeps ``n_envs`` fixed at ``N``. Outside ``--optimize`` the objective never
    runs, so training and ``--trial-id`` are unaffected.
    """
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
