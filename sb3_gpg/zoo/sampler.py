"""
GPG's Optuna search space, in the form rl-zoo3 expects (``HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER``).

:func:`sample_gpg_params` suggests a trial's parameters and returns GPG's keyword arguments;
:func:`convert_gpg_params` rebuilds the hyperparameters from a stored trial's parameters, for
``--trial-id``. Every proposal is a valid configuration. The trial's number of envs is chosen in
:func:`suggest_n_envs`, called first by :func:`sb3_gpg.zoo.patches.tunable_n_envs`.
"""

import math
from typing import Any

import optuna
from rl_zoo3.utils import linear_schedule
from torch import nn

#: Optuna search space of :func:`sample_gpg_params` (choices of the categorical parameters).
N_ENVS = (1, 2, 4, 8, 16, 32)
GROUP_SIZES = (2, 4, 8, 16, 32)
EPISODES_PER_ENV = (1, 2, 4)
BINNINGS = ("timestep", "none", "grid")
#: Grid widths of ``binning="grid"`` (observations rounded to a grid of this width).
BIN_EPS = (0.1, 0.25, 0.5, 1.0, 2.0)
#: Baselines (GPG's ``baseline``); with ``"group"``, advantages are normalised per minibatch or, with
#: ``per_bin_std`` (GRPO), by each bin's std: the estimator study found each variant best on some task.
BASELINES = ("group", "knn")
BIN_WIDTHS = (1, 2, 5, 10, 20)
LR_SCHEDULES = ("constant", "linear")
N_EPOCHS = (1, 5, 10, 20)
CLIP_RANGES = (0.1, 0.2, 0.3, 0.4)
TARGET_KLS = (None, 0.01, 0.02, 0.03, 0.05)
#: Caps on the training episodes' length: shorter episodes give more policy updates per env step (the
#: largest gain found by hand on HalfCheetah-v5), at the price of truncated returns near the cap.
MAX_EPISODE_STEPS = (None, 100, 200, 500)
NET_WIDTHS = (64, 128, 256, 512)
#: Named architectures of the first search space (``net_arch``), still read by :func:`convert_gpg_params`.
NET_ARCHS: dict[str, list[int]] = {"tiny": [64], "small": [64, 64], "medium": [256, 256]}
ACTIVATION_FNS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def suggest_n_envs(trial: optuna.Trial) -> int:
    """
    Suggest a trial's number of training envs, from :data:`N_ENVS`.

    :func:`~sb3_gpg.zoo.patches.tunable_n_envs` calls it before rl-zoo3 builds the trial's envs, and
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
    (``--trial-id``): when the trial has already chosen it (:func:`~sb3_gpg.zoo.patches.tunable_n_envs`), it is suggested
    again from :data:`N_ENVS`; otherwise it is recorded as the single choice ``n_envs`` (then a study
    refuses workers with another ``n_envs``). ``bin_width`` is sampled only for ``"timestep"``
    binning, ``bin_eps`` only for ``"grid"``, ``per_bin_std`` only for the ``"group"`` baseline, and
    ``log_std_init`` only for Box action spaces (``n_actions > 0``). ``max_episode_steps`` is ``None``
    (the env's own limit) or a cap. The learning rate is constant or decays linearly to 0 (rl-zoo3's
    ``linear_schedule``).

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
                "n_envs from the trial before its envs are built (sb3_gpg.zoo.patches.tunable_n_envs)."
            )
    else:
        trial.suggest_categorical("n_envs", [int(n_envs)])
    group_size = trial.suggest_categorical("group_size", list(GROUP_SIZES))
    trial.suggest_categorical("episodes_per_env", list(EPISODES_PER_ENV))
    trial.suggest_categorical("max_episode_steps", list(MAX_EPISODE_STEPS))
    binning = trial.suggest_categorical("binning", list(BINNINGS))
    if binning == "timestep":
        trial.suggest_categorical("bin_width", list(BIN_WIDTHS))
    elif binning == "grid":
        trial.suggest_categorical("bin_eps", list(BIN_EPS))
    if trial.suggest_categorical("baseline", list(BASELINES)) == "group":
        trial.suggest_categorical("per_bin_std", [False, True])
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
    if "baseline" in hyperparams or "per_bin_std" in hyperparams:
        # The trial's estimator replaces the entry's (whose baseline_kwargs may not apply to it); GRPO's
        # per-bin std replaces the per-minibatch normalisation (as in the estimator study).
        per_bin_std = bool(hyperparams.pop("per_bin_std", False))
        hyperparams["baseline_kwargs"] = {"per_bin_std": True} if per_bin_std else None
        hyperparams["normalize_advantage"] = not per_bin_std
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
