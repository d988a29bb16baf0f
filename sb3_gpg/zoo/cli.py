"""
The command lines: rl-zoo3's scripts with GPG registered, in the style of the ``rl_zoo3`` command.

::

    sb3-gpg train --algo gpg --env CartPole-v1          # python -m sb3_gpg.train
    sb3-gpg enjoy --algo gpg --env CartPole-v1 -f logs  # python -m sb3_gpg.enjoy
    sb3-gpg record-video --algo gpg --env CartPole-v1 -f logs   # python -m sb3_gpg.record_video
    sb3-gpg plot-train -a gpg -e CartPole-v1 -f logs --figure-dir plots
    sb3-gpg all-plots -a gpg ppo -e CartPole-v1 -f logs --figure-dir plots

Each command accepts the flags of the rl-zoo3 script of the same name (``plot-train`` and
``all-plots`` are rl-zoo3's ``plot_train`` and ``all_plots``), for GPG and for rl-zoo3's own
algorithms alike; ``--algo`` defaults to ``gpg``, whose default configuration is sb3-gpg's
``hyperparams/gpg.yml``. The plot commands draw with matplotlib's headless Agg backend and save
every figure to ``--figure-dir`` (default: the current directory) as ``--figure-format`` files
(default: png) instead of opening a window. :func:`run` is where a command line starts: it
registers GPG with rl-zoo3 and applies :mod:`sb3_gpg.zoo.patches` for the command's duration.
"""

import argparse
import contextlib
import os
import re
import runpy
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
from rl_zoo3.utils import ALGOS

from sb3_gpg.gpg import GPG
from sb3_gpg.zoo import patches
from sb3_gpg.zoo.config import ALGO, CONFIG_FILES, config_path
from sb3_gpg.zoo.sampler import convert_gpg_params, sample_gpg_params

USAGE = """usage: sb3-gpg {train,enjoy,record-video,plot-train,all-plots} [options]

Group Policy Gradient (GPG) with the RL Baselines3 Zoo. Each command takes the options of the
rl-zoo3 script of the same name (see `sb3-gpg COMMAND --help`); --algo defaults to gpg.

  train         train or tune an agent (python -m sb3_gpg.train)
  enjoy         run a trained agent and print its episode returns (python -m sb3_gpg.enjoy)
  record-video  record an mp4 of a trained agent (python -m sb3_gpg.record_video)
  plot-train    plot training episode rewards from the Monitor logs, to image files
  all-plots     plot evaluation results and print a results table, to image files
"""


def register() -> None:
    """
    Add GPG, its Optuna sampler and its converter to rl-zoo3's registries (idempotent).

    rl-zoo3 has no plugin discovery: its scripts look algorithms up in ``rl_zoo3.utils.ALGOS``
    (the ``--algo`` choices, read when a script builds its parser) and
    ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER`` (``--optimize``,
    ``--trial-id``). Call it before running rl-zoo3 code on GPG; :func:`run` does.
    """
    ALGOS[ALGO] = GPG
    HYPERPARAMS_SAMPLER[ALGO] = sample_gpg_params
    HYPERPARAMS_CONVERTER[ALGO] = convert_gpg_params


class _PeekError(Exception):
    """A command line that the peek parser cannot read: rl-zoo3's own parser will report it."""


class _PeekParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _PeekError(message)


def _peek(args: Sequence[str], options: dict[tuple[str, ...], type]) -> argparse.Namespace | None:
    """
    Read a few options of an rl-zoo3 command line, ignoring the others.

    :param args: Command-line arguments (without the program name)
    :param options: Option strings (as rl-zoo3 spells them) mapped to their type
    :return: the values (``None`` where absent), or ``None`` if the line cannot be read
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

    :param args: Command-line arguments (without the program name)
    :param algo: Algorithm used when the line names none
    :return: the arguments, with ``--algo algo`` in front when absent
    """
    peeked = _peek(args, {("--algo",): str})
    if peeked is not None and peeked.algo is None:
        return ["--algo", algo, *args]
    return list(args)


def train_args(args: Sequence[str]) -> list[str]:
    """
    Adapt a training command line to GPG, before rl-zoo3's ``train()`` parses it.

    * ``--algo`` defaults to ``gpg``.
    * For GPG (and any algorithm of :data:`~sb3_gpg.zoo.config.CONFIG_FILES`), ``--conf-file``
      defaults to sb3-gpg's configuration file instead of a path inside rl-zoo3's package; other
      algorithms keep rl-zoo3's configurations.
    * ``--trial-id 0`` reaches rl-zoo3 (:func:`~sb3_gpg.zoo.patches.pass_trial_zero`).

    :param args: Command-line arguments (without the program name)
    :return: the arguments to give rl-zoo3's ``train()``
    """
    args = with_default_algo(args)
    options = {("--algo",): str, ("-conf", "--conf-file"): str, ("--storage",): str, ("--study-name",): str}
    peeked = _peek(args, {**options, ("--trial-id",): int})
    if peeked is None:
        return args
    if peeked.algo in CONFIG_FILES and peeked.conf_file is None:
        args = ["--conf-file", str(config_path(peeked.algo)), *args]
    return patches.pass_trial_zero(args, peeked.storage, peeked.study_name, peeked.trial_id)


def untuned_note(args: Sequence[str]) -> str | None:
    """
    The line that says a GPG training run uses the untuned ``default`` entry, because its env has none.

    rl-zoo3 says only ``Using 'default' hyperparameters``, which reads like a normal run.

    :param args: Training command line as :func:`train_args` returns it
    :return: The note, or ``None`` when the env has an entry (or the line is not GPG's, or cannot be read)
    """
    peeked = _peek(args, {("--algo",): str, ("--env",): str, ("-conf", "--conf-file"): str})
    if peeked is None or peeked.algo != ALGO or not peeked.env or not peeked.conf_file:
        return None
    if not peeked.conf_file.endswith((".yml", ".yaml")) or not Path(peeked.conf_file).is_file():
        return None
    import yaml

    entries = yaml.safe_load(Path(peeked.conf_file).read_text()) or {}
    if peeked.env in entries or "default" not in entries:
        return None
    return (
        f"sb3-gpg: {peeked.conf_file} has no entry for {peeked.env}: training with its 'default' entry, an untuned "
        "starting point. Start from the entry of a similar task there, or tune one (--optimize; see the "
        "documentation's rl-zoo3 page)."
    )


@contextlib.contextmanager
def command_line(prog: str, args: Sequence[str]) -> Iterator[None]:
    """
    Run an rl-zoo3 script (which parses ``sys.argv``) on the given arguments, then restore ``sys.argv``.

    :param prog: Program name shown in usage and error messages
    :param args: Command-line arguments (without the program name)
    """
    saved = sys.argv
    sys.argv = [prog, *args]
    try:
        yield
    finally:
        sys.argv = saved


def _figure_file_name(label: str, number: int, extension: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", label).strip("_").lower()
    return f"{slug or f'figure_{number}'}.{extension}"


def save_figures(figure_dir: str | Path, figure_format: str = "png") -> list[Path]:
    """
    Save every open matplotlib figure to a file named after its label, then close it.

    :param figure_dir: Folder for the image files (created if needed)
    :param figure_format: Image format (extension), e.g. ``png``, ``pdf``, ``svg``
    :return: the files written
    """
    from matplotlib import pyplot as plt

    folder = Path(figure_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number in plt.get_fignums():
        figure = plt.figure(number)
        path = folder / _figure_file_name(figure.get_label(), number, figure_format)
        figure.savefig(path, format=figure_format, bbox_inches="tight")
        plt.close(figure)
        print(f"Saved figure to {path}")
        written.append(path)
    return written


def _plot(script: str, args: Sequence[str], prog: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")

    from rl_zoo3 import plots

    own = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    own.add_argument("--figure-dir", default=".")
    own.add_argument("--figure-format", default="png")
    options, rest = own.parse_known_args(list(args))
    if any(flag in rest for flag in ("-h", "--help")):
        print(f"{prog} also takes --figure-dir DIR (default: .) and --figure-format EXT (default: png).\n")
    with command_line(prog, rest), warnings.catch_warnings():
        # plt.show() is a no-op under Agg: the figures are saved below instead.
        warnings.filterwarnings("ignore", message=".*non-interactive.*cannot be shown")
        getattr(plots, script)()
    return save_figures(options.figure_dir, options.figure_format)


def run(command: str, args: Sequence[str] | None = None, prog: str | None = None) -> list[Path] | None:
    """
    Run one command (``train``, ``enjoy``, ``record-video``, ``plot-train``, ``all-plots``).

    :param command: The command, as named in :data:`USAGE` (``_`` and ``-`` alike)
    :param args: Its arguments without the program name (default: ``sys.argv[1:]``)
    :param prog: Program name shown in usage and error messages (default: ``python -m sb3_gpg.<command>``)
    :return: the image files written by a plot command, else ``None``
    :raises SystemExit: for an unknown command, with :data:`USAGE` on stderr
    """
    command = command.replace("_", "-")
    args = list(sys.argv[1:] if args is None else args)
    prog = prog or f"python -m sb3_gpg.{command.replace('-', '_')}"
    register()
    if command == "train":
        from rl_zoo3.train import train

        args = train_args(args)
        note = untuned_note(args)
        if note:
            print(note)
        with command_line(prog, args), patches.study_heartbeats(), patches.tunable_n_envs():
            train()
    elif command == "enjoy":
        from rl_zoo3.enjoy import enjoy

        with command_line(prog, with_default_algo(args)):
            enjoy()
    elif command == "record-video":
        # Environments render to arrays; keep pygame (classic control, Box2D) off any display.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        with command_line(prog, with_default_algo(args)):
            # rl-zoo3's record_video has no function: its whole script is under `if __name__ == "__main__"`.
            runpy.run_module("rl_zoo3.record_video", run_name="__main__", alter_sys=False)
    elif command in ("plot-train", "all-plots"):
        return _plot(command.replace("-", "_"), args, prog)
    else:
        print(USAGE, file=sys.stderr)
        raise SystemExit(f"sb3-gpg: unknown command {command!r}")
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of the ``sb3-gpg`` console script.

    :param argv: ``[COMMAND, *options]`` (default: ``sys.argv[1:]``)
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else 2)
    run(argv[0], argv[1:], prog=f"sb3-gpg {argv[0].replace('_', '-')}")
