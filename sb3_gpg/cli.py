"""
The ``sb3-gpg`` command: rl-zoo3's scripts with GPG registered, in the style of the ``rl_zoo3`` command.

::

    sb3-gpg train --algo gpg --env CartPole-v1          # python -m sb3_gpg.train
    sb3-gpg enjoy --algo gpg --env CartPole-v1 -f logs  # python -m sb3_gpg.enjoy
    sb3-gpg record-video --algo gpg --env CartPole-v1 -f logs
    sb3-gpg plot-train -a gpg -e CartPole-v1 -f logs --figure-dir plots
    sb3-gpg all-plots -a gpg ppo -e CartPole-v1 -f logs --figure-dir plots

Each subcommand accepts the flags of the rl-zoo3 script of the same name (``plot-train`` and
``all-plots`` are rl-zoo3's ``plot_train`` and ``all_plots``). The plot commands draw with
matplotlib's headless Agg backend and save every figure to ``--figure-dir`` (default: the
current directory) as ``--figure-format`` files (default: png) instead of opening a window.
"""

import argparse
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

USAGE = """usage: sb3-gpg {train,enjoy,record-video,plot-train,all-plots} [options]

Group Policy Gradient (GPG) with the RL Baselines3 Zoo. Each command takes the options of the
rl-zoo3 script of the same name (see `sb3-gpg COMMAND --help`); --algo defaults to gpg.

  train         train or tune an agent (python -m sb3_gpg.train)
  enjoy         run a trained agent and print its episode returns (python -m sb3_gpg.enjoy)
  record-video  record an mp4 of a trained agent (python -m sb3_gpg.record_video)
  plot-train    plot training episode rewards from the Monitor logs, to image files
  all-plots     plot evaluation results and print a results table, to image files
"""


def _figure_file_name(label: str, number: int, extension: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", label).strip("_").lower()
    return f"{slug or f'figure_{number}'}.{extension}"


def save_figures(figure_dir: str | Path, figure_format: str = "png") -> list[Path]:
    """
    Save every open matplotlib figure to a file named after its label, then close it.

    Parameters
    ----------
    figure_dir : str | Path
        Folder for the image files (created if needed).
    figure_format : str
        Image format (extension), e.g. ``png``, ``pdf``, ``svg``.

    Returns
    -------
    list[Path]
        The files written.
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


def run_plot(script: str, args: Sequence[str], prog: str) -> list[Path]:
    """
    Run one of rl-zoo3's plot scripts headless and save its figures.

    Parameters
    ----------
    script : str
        ``"plot_train"`` or ``"all_plots"``.
    args : Sequence[str]
        The script's arguments, plus ``--figure-dir DIR`` and ``--figure-format EXT``.
    prog : str
        Program name shown in usage and error messages.

    Returns
    -------
    list[Path]
        The image files written.
    """
    import matplotlib

    matplotlib.use("Agg")

    from rl_zoo3 import plots

    from sb3_gpg import zoo

    zoo.register()
    own = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    own.add_argument("--figure-dir", default=".")
    own.add_argument("--figure-format", default="png")
    options, rest = own.parse_known_args(list(args))
    if any(flag in rest for flag in ("-h", "--help")):
        print(f"{prog} also takes --figure-dir DIR (default: .) and --figure-format EXT (default: png).\n")
    function: Callable[[], None] = getattr(plots, script)
    with zoo.command_line(prog, rest), warnings.catch_warnings():
        # plt.show() is a no-op under Agg: the figures are saved below instead.
        warnings.filterwarnings("ignore", message=".*non-interactive.*cannot be shown")
        function()
    return save_figures(options.figure_dir, options.figure_format)


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of the ``sb3-gpg`` console script.

    Parameters
    ----------
    argv : Sequence[str] | None
        ``[COMMAND, *options]`` (default: ``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else 2)
    command, args = argv[0].replace("_", "-"), argv[1:]
    prog = f"sb3-gpg {command}"
    if command == "train":
        from sb3_gpg.train import main as train

        train(args, prog=prog)
    elif command == "enjoy":
        from sb3_gpg.enjoy import main as enjoy

        enjoy(args, prog=prog)
    elif command == "record-video":
        from sb3_gpg.record_video import main as record_video

        record_video(args, prog=prog)
    elif command in ("plot-train", "all-plots"):
        run_plot(command.replace("-", "_"), args, prog)
    else:
        print(USAGE, file=sys.stderr)
        raise SystemExit(f"sb3-gpg: unknown command {argv[0]!r}")


if __name__ == "__main__":
    main()
