"""The web and worker processes freeze what start-up left on the heap."""

import os
import subprocess
import sys

import pytest

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


WORKER_SCRIPT = """
import gc, os, signal, sys, threading
import django
django.setup()
from django.conf import settings
from django.utils.module_loading import import_string
worker = import_string(settings.RQ["WORKER_CLASS"])(list(settings.QUEUE_NAMES))
# Stopped as the Procfile's worker is, by SIGTERM, once it works.
stop = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM))
stop.daemon = True
stop.start()
worker.work(burst=sys.argv[1] == "burst")
stop.cancel()
print(gc.get_freeze_count(), gc.get_threshold()[0])
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["until-stopped", "burst"])
def test_a_worker_that_works_until_stopped_freezes_its_heap(mode, service_env):
    # A burst worker runs inside another program (tests, bench): its heap is left.
    env = {**service_env, "SECRET_KEY": "t", "PATH": os.environ["PATH"]}
    out = subprocess.run(
        [sys.executable, "-c", WORKER_SCRIPT, mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    frozen, young = map(int, out.stdout.split()[-2:])
    if mode == "burst":
        assert frozen == 0 and young != YOUNG_OBJECTS
    else:
        assert frozen > 50_000 and young == YOUNG_OBJECTS
