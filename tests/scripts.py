"""Import the modules of ``scripts/`` (not part of the package) in tests."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str) -> ModuleType:
    """
    Import ``scripts/<name>.py`` as module ``name``, with ``scripts/`` on ``sys.path`` while it runs, as when the
    script runs from ``scripts/`` (it imports its neighbours, such as ``bench_report``).

    :param name: Script name without ``.py``
    :return: the module (also registered in ``sys.modules``)
    """
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module
