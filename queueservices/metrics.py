"""GET /metrics: Prometheus text format, for the same people as the dashboard."""

from django.http import HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from jobs import metrics as job_metrics
from queueservices.access import dashboard_required


@dashboard_required
@require_safe
def metrics(request):
    return HttpResponse(job_metrics.render(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
