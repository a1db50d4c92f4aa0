"""Run a Python script under cProfile counting CPU time, not wall time.

    python bench/cpu_profile.py STATS_FILE manage.py rqworker ...

The main thread's profile uses time.thread_time: a thread waiting for the GIL
(the worker's main thread while its HTTP thread runs) or for a socket costs
nothing here, unlike cProfile's default wall clock. At exit it prints the
process's CPU split: the main thread, and everything else (the HTTP thread).
Threads started by the script are profiled too, each into STATS_FILE.<name>.
"""

import atexit
import cProfile
import runpy
import sys
import threading
import time


def main() -> None:
    stats_file, script, *args = sys.argv[1:]
    sys.argv = [script, *args]
    sys.path.insert(0, ".")
    profile = cProfile.Profile(time.thread_time)

    def report():
        profile.disable()
        profile.dump_stats(stats_file)
        main_s, all_s = time.thread_time(), time.process_time()
        print(
            f"cpu: process {all_s:.2f} s, main thread {main_s:.2f} s, "
            f"other threads {all_s - main_s:.2f} s",
            file=sys.stderr,
        )

    atexit.register(report)
    _profile_threads(stats_file)
    profile.enable()
    runpy.run_path(script, run_name="__main__")


def _profile_threads(stats_file: str) -> None:
    """Each thread started from now on gets a CPU-time profile of its own, written
    to STATS_FILE.<thread name> when the thread ends or the process exits."""
    original = threading.Thread.run

    def run(self):
        thread_profile = cProfile.Profile(time.thread_time)
        atexit.register(lambda: _dump(thread_profile, f"{stats_file}.{self.name}"))
        thread_profile.enable()
        try:
            original(self)
        finally:
            _dump(thread_profile, f"{stats_file}.{self.name}")

    threading.Thread.run = run


def _dump(profile: cProfile.Profile, path: str) -> None:
    profile.disable()
    profile.dump_stats(path)


if __name__ == "__main__":
    main()
