"""django-rq's rqworker, listening on every queue of ours when none is named."""

from django.conf import settings
from django_rq.management.commands import rqworker


class Command(rqworker.Command):
    def handle(self, *args, **options):
        return super().handle(*(args or settings.QUEUE_NAMES), **options)
