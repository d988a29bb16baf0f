"""Where sb3-gpg's rl-zoo3 configuration files are, wherever the package is installed."""

from pathlib import Path

#: Name of GPG in rl-zoo3's ``--algo`` choices.
ALGO = "gpg"

#: The default configuration file of each algorithm this package adds to rl-zoo3.
CONFIG_FILES: dict[str, str] = {ALGO: "gpg.yml"}


def hyperparams_dir() -> Path:
    """
    Folder holding sb3-gpg's rl-zoo3 configuration files (``gpg.yml``).

    An installed wheel carries the repository's top-level ``hyperparams/`` folder as
    ``sb3_gpg/hyperparams/`` (package data); a source checkout or an editable install finds it
    beside the package. Either way the result does not depend on the working directory.

    :return: absolute path of the folder
    :raises FileNotFoundError: if neither location holds the configuration files
    """
    package = Path(__file__).resolve().parents[1]
    candidates = (package / "hyperparams", package.parent / "hyperparams")
    for folder in candidates:
        if all((folder / name).is_file() for name in CONFIG_FILES.values()):
            return folder
    raise FileNotFoundError(
        f"sb3-gpg's hyperparameter files ({', '.join(CONFIG_FILES.values())}) were found in none of "
        f"{[str(folder) for folder in candidates]}: the package is installed without its data."
    )


def config_path(algo: str = ALGO) -> Path:
    """
    Default rl-zoo3 configuration file of an algorithm added by this package.

    :param algo: Algorithm name, as given to ``--algo``
    :return: absolute path of its ``.yml`` file
    :raises KeyError: if ``algo`` is not one of this package's algorithms
    """
    return hyperparams_dir() / CONFIG_FILES[algo]
