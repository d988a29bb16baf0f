"""
``scripts/benchmark.py --address`` on a real two-node Ray cluster started on 127.0.0.1: runs land on both nodes, the
worker node is killed mid-run by its PID, and every run's result is there exactly once.
"""

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("rl_zoo3")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds processes in /proc")]

REPO = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes() -> dict[int, tuple[int, str]]:
    """Every process: its parent's PID and its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if entry.name.isdigit():
            found[int(entry.name)] = (int(stat.rpartition(")")[2].split()[1]), command)
    return found


def descendants(pid: int) -> list[int]:
    table, found, frontier = processes(), [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, (ppid, _) in table.items() if ppid == parent]
        found, frontier = found + children, frontier + children
    return found


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # gone already, with the process it depended on
            os.kill(pid, signal.SIGKILL)


def stop_cluster(marks: list[str]) -> None:
    """Kill this cluster's processes only (each names its temporary folder or its address) and what runs under them."""
    own = [pid for pid, (_, command) in processes().items() if any(m in command for m in marks) and pid != os.getpid()]
    kill([*(child for parent in own for child in descendants(parent)), *own])


def test_two_nodes_a_dead_worker_node_and_each_result_once(tmp_path: Path) -> None:
    port, worker_port, client_port, out = free_port(), free_port(), free_port(), tmp_path / "out"
    # The cluster's own temporary folder (short: Ray's socket paths must fit), by which it is stopped at the end
    # without `ray stop`, which would stop every Ray instance of the machine.
    temp_dir, sweep = tempfile.mkdtemp(prefix="ray-", dir="/tmp"), None
    # Ray's token authentication, as on a cluster of several machines: every node and the driver hold one token.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "token"}
    env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    ray = lambda *args: subprocess.run([str(RAY), *args], env=env, capture_output=True, text=True, timeout=120)  # noqa: E731
    try:
        head = ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
                   "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}",
                   f"--ray-client-server-port={client_port}")  # fmt: skip
        assert head.returncode == 0, head.stderr
        worker = ray("start", f"--address=127.0.0.1:{port}", "--num-cpus=1", f"--node-manager-port={worker_port}")
        assert worker.returncode == 0, worker.stderr
        [(raylet, command)] = [(p, c) for p, (_, c) in processes().items() if f"--node_manager_port={worker_port}" in c]
        worker_node = command.partition("--node_id=")[2].split()[0]

        seeds = [str(s) for s in range(6)]
        sweep = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "benchmark.py"), "--smoke", "--algos", "gpg", "--seeds", *seeds,
             "--address", f"127.0.0.1:{port}", "--out", str(out), "--curve-episodes", "2"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        )  # fmt: skip
        # Once a run has finished on the worker node and another one trains there, kill the node: its raylet and every
        # process under it (Ray's workers, the training subprocess). The training run's spec says which run it was.
        deadline, killed_seed = time.monotonic() + 300, None
        while time.monotonic() < deadline and sweep.poll() is None:
            results = [json.loads(p.read_text()) for p in out.glob("runs/gpg/*/seed*/result.json")]
            landed = any(r["provenance"]["node"]["ray_node_id"] == worker_node for r in results)
            table = processes()
            training = [table[p][1] for p in descendants(raylet) if "benchmark.py --worker" in table.get(p, (0, ""))[1]]
            if landed and training:
                spec = Path(training[0].split("--worker")[1].split()[0])
                with contextlib.suppress(OSError, ValueError):
                    killed_seed = json.loads(spec.read_text())["seed"]
                if killed_seed is not None:
                    kill([*descendants(raylet), raylet])
                    break
            time.sleep(0.2)
        output = sweep.communicate(timeout=600)[0]
        assert killed_seed is not None, f"no run was training on the worker node after one had finished there:\n{output}"
        assert sweep.returncode == 0 and "FAILED" not in output, output

        results = {p.parent.name: json.loads(p.read_text()) for p in out.glob("runs/gpg/CartPole-v1/seed*/result.json")}
        assert sorted(results) == [f"seed{s}" for s in seeds]  # every run, each in its own folder
        assert [p.name for p in out.glob("runs/gpg/CartPole-v1/seed0/*")] != []
        assert all(sorted(p.name for p in d.iterdir()) == ["result.json", "worker.log"] for d in out.glob("runs/gpg/*/seed*"))
        nodes = {r["provenance"]["node"]["ray_node_id"] for r in results.values()}
        assert len(nodes) == 2 and worker_node in nodes  # runs landed on both nodes
        for seed in seeds:  # each run reported once: the killed one retried, not doubled
            assert output.count(f"gpg CartPole-v1 seed {seed}:") == 1, output
        # The killed run was retried on the head node.
        assert results[f"seed{killed_seed}"]["provenance"]["node"]["ray_node_id"] != worker_node
    finally:
        if sweep is not None and sweep.poll() is None:
            sweep.kill()
        stop_cluster([temp_dir, f"127.0.0.1:{port}"])
        shutil.rmtree(temp_dir, ignore_errors=True)
