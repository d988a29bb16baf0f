"""
``python -m sb3_gpg.enjoy``: rl-zoo3's script that runs a trained agent, with GPG registered (:mod:`sb3_gpg.zoo.cli`).

It accepts every flag of ``python -m rl_zoo3.enjoy``; ``--algo`` defaults to ``gpg``. It prints
each episode's return and length, then their mean. Example (headless)::

    python -m sb3_gpg.enjoy --algo gpg --env CartPole-v1 -f logs --no-render -n 1000
"""

from collections.abc import Sequence


def main(args: Sequence[str] | None = None, prog: str = "python -m sb3_gpg.enjoy") -> None:
    """
    Load a trained agent from an rl-zoo3 log folder and run it.

    :param args: Command-line arguments without the program name (default: ``sys.argv[1:]``)
    :param prog: Program name shown in usage and error messages
    """
    from sb3_gpg.cli import zoo_cli

    zoo_cli(prog).run("enjoy", args, prog)


if __name__ == "__main__":
    main()
