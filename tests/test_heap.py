"""The web and worker processes freeze what start-up left on the heap."""

import subprocess
import sys

from jobs.processes.heap import YOUNG_OBJECTS


def test_loading_the_web_application_freezes_the_start_up_heap(tmp_path):
    code = (
        "import gc, config.wsgi; "
        "print(gc.get_freeze_count(), gc.get_threshold()[0], len(gc.get_objects()))"
    )
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "t",
           "VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    frozen, young, walked = map(int, out)
    # Nearly everything is out of the collector's reach; what is left is new.
    assert frozen > 50_000 and walked < frozen / 10
    assert young == YOUNG_OBJECTS
