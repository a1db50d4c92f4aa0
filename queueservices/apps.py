from django.apps import AppConfig


class QueueServicesConfig(AppConfig):
    name = "queueservices"
