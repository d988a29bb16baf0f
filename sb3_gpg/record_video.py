"""
``python -m sb3_gpg.record_video``: rl-zoo3's video recording script, with GPG registered (:mod:`sb3_gpg.zoo.cli`).

It accepts every flag of ``python -m rl_zoo3.record_video``; ``--algo`` defaults to ``gpg``.
It renders off-screen (``rgb_array``) and writes an mp4 with MoviePy, whose ``imageio-ffmpeg``
dependency ships the ffmpeg binary, so it needs no display. Example::

    python -m sb3_gpg.record_video --algo gpg --env CartPole-v1 -f logs -n 500 -o videos
"""

from collections.abc import Sequence


def main(args: Sequence[str] | None = None, prog: str = "python -m sb3_gpg.record_video") -> None:
    """
    Record a video of a trained agent from an rl-zoo3 log folder.

    :param args: Command-line arguments without the program name (default: ``sys.argv[1:]``)
    :param prog: Program name shown in usage and error messages
    """
    from sb3_gpg.cli import zoo_cli

    zoo_cli(prog).run("record-video", args, prog)


if __name__ == "__main__":
    main()
