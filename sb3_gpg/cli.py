"""
The ``sb3-gpg`` command (console script), ``sb3-gpg {train,enjoy,record-video,plot-train,all-plots}``.

Implemented in :mod:`sb3_gpg.zoo.cli`; this module keeps the entry point ``sb3_gpg.cli:main`` and
``python -m sb3_gpg.cli`` stable. Without the ``[zoo]`` extra, every command line (this one and
``python -m sb3_gpg.train|enjoy|record_video``) stops with one line saying what to install
(:func:`zoo_cli`), not a traceback.
"""

import importlib
from collections.abc import Sequence
from types import ModuleType

#: The modules of the ``[zoo]`` extra that :mod:`sb3_gpg.zoo` imports.
ZOO_MODULES = ("rl_zoo3", "optuna")


def zoo_cli(prog: str = "sb3-gpg") -> ModuleType:
    """
    Import :mod:`sb3_gpg.zoo.cli`, or exit with one line naming what to install if the ``[zoo]`` extra is missing.

    :param prog: Program name that starts the message
    :return: the module :mod:`sb3_gpg.zoo.cli`
    :raises SystemExit: with status 1 when rl-zoo3 or Optuna is not installed
    """
    try:
        return importlib.import_module("sb3_gpg.zoo.cli")
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in ZOO_MODULES:
            raise
        # SystemExit prints its message on stderr and exits with status 1; `from None` keeps the chain out of it.
        raise SystemExit(
            f"{prog}: the command line needs rl-zoo3 and Optuna (no module named {error.name!r}): "
            'install the zoo extra: pip install ".[zoo]" in a checkout of sb3-gpg'
        ) from None


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of the ``sb3-gpg`` console script.

    :param argv: ``[COMMAND, *options]`` (default: ``sys.argv[1:]``)
    """
    zoo_cli().main(argv)


if __name__ == "__main__":
    main()
