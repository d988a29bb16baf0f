"""
The ``sb3-gpg`` command (console script), ``sb3-gpg {train,enjoy,record-video,plot-train,all-plots}``.

Implemented in :mod:`sb3_gpg.zoo.cli`; this module keeps the entry point ``sb3_gpg.cli:main`` and
``python -m sb3_gpg.cli`` stable.
"""

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of the ``sb3-gpg`` console script.

    :param argv: ``[COMMAND, *options]`` (default: ``sys.argv[1:]``)
    """
    from sb3_gpg.zoo.cli import main as zoo_main

    zoo_main(argv)


if __name__ == "__main__":
    main()
