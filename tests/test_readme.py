"""The README's Python code runs verbatim: each ```python block, saved as a script and run on its own (slow)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
# A fenced block: a line that is exactly ```python, then everything up to the next line that is exactly ```.
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def readme_python_blocks() -> list[tuple[int, str]]:
    """
    The README's ```python blocks.

    :return: ``(line number of the opening fence, code)`` for each block, in order
    """
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in PYTHON_BLOCK.finditer(text)]


BLOCKS = readme_python_blocks()


def test_readme_has_python_blocks():
    # The Quickstart and the PPO-style example at least: guards against a fence change that would make
    # the test below run nothing.
    assert len(BLOCKS) >= 2, f"found {len(BLOCKS)} ```python blocks in {README}"
    assert all(code.strip() for _, code in BLOCKS)


@pytest.mark.slow
@pytest.mark.timeout(660)
@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_python_block_runs_as_a_script(line, code, tmp_path):
    # Saved as a file and run as `python script.py`, as a user would: a module-level SubprocVecEnv without
    # `if __name__ == "__main__":` then re-runs the script in its worker processes and fails.
    script = tmp_path / f"readme_line_{line}.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ)
    # One torch thread, as the README advises on few cores (the machine has two, shared).
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    # The package is normally installed (pip install -e .); the repository on the path is a fallback.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO)]))
    result = subprocess.run([sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"README.md line {line}: exit status {result.returncode}\n{output[-6000:]}"
