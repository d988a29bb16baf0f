"""
``python -m sb3_gpg.train``: rl-zoo3's training script, with GPG registered.

It accepts every flag of ``python -m rl_zoo3.train``. ``--algo`` defaults to ``gpg``, whose
default configuration is sb3-gpg's ``hyperparams/gpg.yml`` (``--conf-file`` overrides it); the
other algorithms (``ppo``, ``a2c``, ...) keep rl-zoo3's configurations. Example::

    python -m sb3_gpg.train --algo gpg --env CartPole-v1 --seed 0
"""

from collections.abc import Sequence

from sb3_gpg import zoo


def main(args: Sequence[str] | None = None, prog: str = "python -m sb3_gpg.train") -> None:
    """
    Train (or tune, with ``--optimize``) an agent with rl-zoo3.

    Parameters
    ----------
    args : Sequence[str] | None
        Command-line arguments without the program name (default: ``sys.argv[1:]``).
    prog : str
        Program name shown in usage and error messages.
    """
    import sys

    from rl_zoo3.train import train

    zoo.register()
    arguments = zoo.train_args(sys.argv[1:] if args is None else args)
    with zoo.command_line(prog, arguments), zoo.study_heartbeats(), zoo.tunable_n_envs():
        train()


if __name__ == "__main__":
    main()
