"""
``python -m sb3_gpg.enjoy``: rl-zoo3's script that runs a trained agent, with GPG registered.

It accepts every flag of ``python -m rl_zoo3.enjoy``; ``--algo`` defaults to ``gpg``. It prints
each episode's return and length, then their mean. Example (headless)::

    python -m sb3_gpg.enjoy --algo gpg --env CartPole-v1 -f logs --no-render -n 1000
"""

from collections.abc import Sequence

from sb3_gpg import zoo


def main(args: Sequence[str] | None = None, prog: str = "python -m sb3_gpg.enjoy") -> None:
    """
    Load a trained agent from an rl-zoo3 log folder and run it.

    Parameters
    ----------
    args : Sequence[str] | None
        Command-line arguments without the program name (default: ``sys.argv[1:]``).
    prog : str
        Program name shown in usage and error messages.
    """
    import sys

    from rl_zoo3.enjoy import enjoy

    zoo.register()
    arguments = zoo.with_default_algo(sys.argv[1:] if args is None else args)
    with zoo.command_line(prog, arguments):
        enjoy()


if __name__ == "__main__":
    main()
