"""django-rq's rqworker, listening on every queue of ours when none is named."""

from django.conf import settings
from django_rq.management.commands import rqworker

from jobs.schema import wait_for_schema


class Command(rqworker.Command):
    def handle(self, *args, **options):
        wait_for_schema()
        return super().handle(*(args or settings.QUEUE_NAMES), **options)
