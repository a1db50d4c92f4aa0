from django.conf import settings
from django.core.checks import Error, Warning, register

SEED_EXAMPLE_PASSWORD = "admin123"


@register()
def dashboard_password(app_configs, **kwargs):
    if settings.DEBUG:
        return []
    if not settings.BULL_BOARD_PASSWORD:
        return [
            Error(
                "BULL_BOARD_PASSWORD is empty while DEBUG is off.",
                hint="Set BULL_BOARD_PASSWORD to a long random value.",
                id="queueservices.E001",
            )
        ]
    if settings.BULL_BOARD_PASSWORD == SEED_EXAMPLE_PASSWORD:
        return [
            Warning(
                "BULL_BOARD_PASSWORD is the integration guide's example 'admin123'.",
                hint="Anyone who read the guide can use /admin/queues: set your own.",
                id="queueservices.W001",
            )
        ]
    return []
