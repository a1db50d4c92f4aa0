"""django-rq's rqscheduler with defaults for our scheduler class.

jobs.processes.scheduler.PreciseScheduler sleeps until the next due job; --interval
is only the longest it sleeps without a look (a safety net), so 1 s is the default.
"""

from django_rq.management.commands import rqscheduler

from jobs.schema import wait_for_schema


class Command(rqscheduler.Command):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(interval=1, queue="scheduled-sms-queue")

    def handle(self, *args, **options):
        wait_for_schema()
        return super().handle(*args, **options)
