"""Run a Python script under cProfile counting CPU time, not wall time.

    python bench/cpu_profile.py STATS_FILE manage.py rqworker ...

The main thread's profile uses time.thread_time: a thread waiting for the GIL
(the worker's main thread while its HTTP thread runs) or for a socket costs
nothing here, unlike cProfile's default wall clock. At exit it prints the
process's CPU split: the main thread, and everything else (the HTTP thread).
"""

import atexit
import cProfile
import runpy
import sys
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
    profile.enable()
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
