from django.apps import AppConfig


class QueueServicesConfig(AppConfig):
    name = "queueservices"

    def ready(self):
        from queueservices import checks  # noqa: F401 - registers the system checks
