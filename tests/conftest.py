"""Test-session settings shared by every test file."""

import torch as th

# One torch thread: the tests' networks are tiny, and on few cores torch's default thread pool makes them
# several times slower (the README's speed tip); subprocesses get OMP_NUM_THREADS=1 from scripts/test.sh.
th.set_num_threads(1)
