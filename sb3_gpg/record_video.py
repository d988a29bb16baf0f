"""
``python -m sb3_gpg.record_video``: rl-zoo3's video recording script, with GPG registered.

It accepts every flag of ``python -m rl_zoo3.record_video``; ``--algo`` defaults to ``gpg``.
It renders off-screen (``rgb_array``) and writes an mp4 with MoviePy, whose ``imageio-ffmpeg``
dependency ships the ffmpeg binary, so it needs no display. Example::

    python -m sb3_gpg.record_video --algo gpg --env CartPole-v1 -f logs -n 500 -o videos
"""

import os
import runpy
from collections.abc import Sequence

from sb3_gpg import zoo


def main(args: Sequence[str] | None = None, prog: str = "python -m sb3_gpg.record_video") -> None:
    """
    Record a video of a trained agent from an rl-zoo3 log folder.

    Parameters
    ----------
    args : Sequence[str] | None
        Command-line arguments without the program name (default: ``sys.argv[1:]``).
    prog : str
        Program name shown in usage and error messages.
    """
    import sys

    zoo.register()
    # Environments render to arrays; keep pygame (classic control, Box2D) off any display.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    arguments = zoo.with_default_algo(sys.argv[1:] if args is None else args)
    with zoo.command_line(prog, arguments):
        # rl-zoo3's record_video has no function: its whole script is under `if __name__ == "__main__"`.
        runpy.run_module("rl_zoo3.record_video", run_name="__main__", alter_sys=False)


if __name__ == "__main__":
    main()
