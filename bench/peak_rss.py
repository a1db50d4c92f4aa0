"""Peak resident memory per component while a benchmark runs (Linux /proc).

    python bench/peak_rss.py OUT.json &   ...   kill -TERM $!

Every 0.5 s it sums VmRSS of the processes of each component (recognised by their
command line) and keeps each component's maximum, and the largest single process
of each ("web process": one granian worker, the target of issue 12); on SIGTERM it
writes them as JSON.
"""

import json
import signal
import sys
import time
from pathlib import Path

COMPONENTS = {
    "web": "granian",
    "worker": "rqworker",
    "scheduler": "rqscheduler",
    "redis": "redis-server",
    "sink": "sink.py",
}


def sample() -> tuple[dict[str, int], dict[str, int]]:
    totals = dict.fromkeys(COMPONENTS, 0)
    largest = dict.fromkeys(COMPONENTS, 0)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (proc / "status").read_text()
        except OSError:
            continue
        rss = next(
            (
                line.split()[1]
                for line in status.splitlines()
                if line.startswith("VmRSS")
            ),
            None,
        )
        for name, marker in COMPONENTS.items():
            if marker in cmdline and rss:
                totals[name] += int(rss) * 1024
                largest[name] = max(largest[name], int(rss) * 1024)
                break
    return totals, largest


def main() -> None:
    out = Path(sys.argv[1])
    peak = dict.fromkeys(COMPONENTS, 0)
    peak_process = dict.fromkeys(COMPONENTS, 0)
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    while running:
        totals, largest = sample()
        for name in COMPONENTS:
            peak[name] = max(peak[name], totals[name])
            peak_process[name] = max(peak_process[name], largest[name])
        time.sleep(0.5)
    found = {name: round(v / 2**20, 1) for name, v in peak.items()}
    found.update(
        {f"{name} process": round(peak_process[name] / 2**20, 1) for name in COMPONENTS}
    )
    out.write_text(json.dumps(found))


if __name__ == "__main__":
    main()
