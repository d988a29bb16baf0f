"""
``python -m sb3_gpg.train``: rl-zoo3's training script with GPG registered (:mod:`sb3_gpg.zoo.cli`).

It accepts every flag of ``python -m rl_zoo3.train``. ``--algo`` defaults to ``gpg``, whose
default configuration is sb3-gpg's ``hyperparams/gpg.yml`` (``--conf-file`` overrides it); the
other algorithms (``ppo``, ``a2c``, ...) keep rl-zoo3's configurations. Example::

    python -m sb3_gpg.train --algo gpg --env CartPole-v1 --seed 0
"""

from collections.abc import Sequence


def main(args: Sequence[str] | None = None, prog: str = "python -m sb3_gpg.train") -> None:
    """
    Train (or tune, with ``--optimize``) an agent with rl-zoo3.

    :param args: Command-line arguments without the program name (default: ``sys.argv[1:]``)
    :param prog: Program name shown in usage and error messages
    """
    from sb3_gpg.cli import zoo_cli

    zoo_cli(prog).run("train", args, prog)


if __name__ == "__main__":
    main()
