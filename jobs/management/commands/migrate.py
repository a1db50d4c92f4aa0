"""Django's migrate, one run at a time per database, and the deployment's checks.

The Redis warnings (jobs.checks, deployment checks) are printed here, by the release
phase and the web process's start, rather than by every worker and scheduler.
"""

from django.core.management.commands import migrate
from django.db import connections

from jobs.checks import DEPLOYMENT_TAG
from jobs.migrationlock import migration_lock


class Command(migrate.Command):
    def handle(self, *args, **options):
        if not options["skip_checks"]:
            self.check(
                tags=[DEPLOYMENT_TAG],
                include_deployment_checks=True,
                display_num_errors=False,
            )
        with migration_lock(connections[options["database"]]):
            return super().handle(*args, **options)
