"""
The README's Python code runs verbatim, as a user runs it: each ```python block, saved as a script and run on its
own, with no thread settings in the environment and a time limit a user would accept (slow). Its result table quotes
the committed benchmark report's summary verbatim, every task included.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
# A fenced block: a line that is exactly ```python, then everything up to the next line that is exactly ```.
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
#: Seconds a block may take, set for a 2-core CPU: a user pasting a README example waits about a minute, not ten.
#: A block that is too slow is made faster (fewer steps, torch.set_num_threads(1) in the block), not this looser.
BLOCK_TIME_LIMIT = 120
#: The benchmark report the README's result tables quote, and the comment that marks each quoted table.
BENCHMARK = REPO / "benchmarks" / "gpg_vs_ppo"
QUOTE = "<!-- quoted from benchmarks/gpg_vs_ppo/benchmark.md: tests/test_readme.py checks it -->"
#: Thread settings that a user's shell does not have: the blocks must be fast without them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def readme_python_blocks() -> list[tuple[int, str]]:
    """
    The README's ```python blocks.

    :return: ``(line number of the opening fence, code)`` for each block, in order
    """
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in PYTHON_BLOCK.finditer(text)]


BLOCKS = readme_python_blocks()


def _text(output: str | bytes | None) -> str:
    # TimeoutExpired carries what the process printed so far, as bytes or str depending on the Python version.
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def test_readme_has_python_blocks():
    # The Quickstart and the PPO-style example at least: guards against a fence change that would make
    # the test below run nothing.
    assert len(BLOCKS) >= 2, f"found {len(BLOCKS)} ```python blocks in {README}"
    assert all(code.strip() for _, code in BLOCKS)


@pytest.mark.slow
@pytest.mark.timeout(BLOCK_TIME_LIMIT + 60)
@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_python_block_runs_as_a_script(line, code, tmp_path):
    # Saved as a file and run as `python script.py`, as a user would: a module-level SubprocVecEnv without
    # `if __name__ == "__main__":` then re-runs the script in its worker processes and fails.
    script = tmp_path / f"readme_line_{line}.py"
    script.write_text(code, encoding="utf-8")
    # As in a user's shell: no thread settings (scripts/test.sh sets OMP_NUM_THREADS=1 for the other tests), so a
    # block that needs one torch thread to be fast must say torch.set_num_threads(1) itself, as the README's do.
    env = {name: value for name, value in os.environ.items() if name not in THREAD_VARIABLES}
    env.update(PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    # The package is normally installed (pip install -e .); the repository on the path is a fallback.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO)]))
    start = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=BLOCK_TIME_LIMIT
        )
    except subprocess.TimeoutExpired as error:
        output = _text(error.stdout) + _text(error.stderr)
        pytest.fail(f"README.md line {line}: over {BLOCK_TIME_LIMIT} s: make the block faster\n{output[-3000:]}")
    seconds = time.monotonic() - start
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"README.md line {line}: exit status {result.returncode}, {seconds:.0f} s\n{output[-6000:]}"
    print(f"README.md line {line}: {seconds:.1f} s")


def quoted_tables() -> list[list[str]]:
    """The README's tables marked with :data:`QUOTE`: each the table's lines (header, rule, rows) that follow it."""
    lines, tables = README.read_text(encoding="utf-8").splitlines(), []
    for i in (i for i, line in enumerate(lines) if line.strip() == QUOTE):
        rest = lines[i + 1 :]
        tables.append(rest[: next((k for k, line in enumerate(rest) if not line.startswith("|")), len(rest))])
    return tables


def test_readme_result_table_quotes_the_benchmark_report():
    # Every number of the README's result table comes from scripts/benchmark.py: the table is a block of consecutive
    # lines of the committed benchmark.md, its summary, and it leaves no task out, so that a verdict cannot be dropped.
    report = (BENCHMARK / "benchmark.md").read_text(encoding="utf-8")
    aggregate = json.loads((BENCHMARK / "aggregate.json").read_text(encoding="utf-8"))
    tables = quoted_tables()
    assert len(tables) == 1, f"expected the summary table after {QUOTE!r}, found {len(tables)}"
    (table,) = tables
    assert len(table) > 2 and "\n".join(table) in report, "README table not in benchmark.md:\n" + "\n".join(table)
    assert table[0].startswith("|env|normalized [95% CI]|verdict|at equal compute"), "README: not the summary table"
    tasks = [line.split("|")[1] for line in table[2:]]
    expected = [row["env_id"] for row in aggregate["verdicts"]]
    assert tasks == [*expected, f"all {len(expected)} tasks"], f"README's table: tasks {tasks}"
