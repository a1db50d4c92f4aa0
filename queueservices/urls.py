from django.urls import path, re_path
from drf_spectacular.views import SpectacularSwaggerView

from queueservices import (
    control_views,
    dashboard,
    errors,
    metrics,
    testpages,
    views,
)

# Trailing slashes are optional: clients written for the seed's service send none.
urlpatterns = [
    re_path(
        r"^api/schedule-sms/?$", views.ScheduleSmsView.as_view(), name="schedule-sms"
    ),
    re_path(
        r"^api/schedule-email/?$",
        views.ScheduleEmailView.as_view(),
        name="schedule-email",
    ),
    re_path(
        r"^api/schedule-batch/?$",
        views.ScheduleBatchView.as_view(),
        name="schedule-batch",
    ),
    re_path(
        r"^api/job-status/(?P<job_id>[^/]+)/?$",
        views.JobStatusView.as_view(),
        name="job-status",
    ),
    re_path(r"^api/jobs/?$", control_views.JobListView.as_view(), name="jobs"),
    re_path(
        r"^api/jobs/(?P<job_id>[^/]+)/?$", control_views.JobView.as_view(), name="job"
    ),
    *[
        re_path(
            rf"^api/{scope}s/(?P<{scope}_id>[^/]+)/{action}/?$",
            view.as_view(),
            name=f"{scope}-{action}",
        )
        for (scope, action), view in control_views.SCOPE_VIEWS.items()
    ],
    re_path(r"^health/?$", views.HealthView.as_view(), name="health"),
    path(
        "api/schema",
        errors.SchemaView.as_view(authentication_classes=[], permission_classes=[]),
        name="api-schema",
    ),
    # Open like the schema it shows; its assets come from drf_spectacular_sidecar.
    path(
        "api/docs",
        SpectacularSwaggerView.as_view(
            url_name="api-schema", authentication_classes=[], permission_classes=[]
        ),
        name="api-docs",
    ),
    re_path(r"^metrics/?$", metrics.metrics, name="metrics"),
    re_path(r"^test-email/?$", testpages.test_email, name="test-email"),
    re_path(r"^test-sms/?$", testpages.test_sms, name="test-sms"),
    # The dashboard, before Django's admin: its catch-all would hide these.
    re_path(r"^admin/queues/?$", dashboard.overview, name="dashboard"),
    path("admin/queues/jobs", dashboard.job_list, name="dashboard-jobs"),
    path("admin/queues/jobs/<uuid:job_id>", dashboard.job_detail, name="dashboard-job"),
    path(
        "admin/queues/jobs/<uuid:job_id>/<slug:action>",
        dashboard.job_action,
        name="dashboard-job-action",
    ),
    path(
        "admin/queues/queues/<str:queue>/<slug:action>",
        dashboard.queue_action,
        name="dashboard-queue-action",
    ),
    re_path(r"^admin/queues/", dashboard.not_found, name="dashboard-not-found"),
    # Last: any other /api/ path is a JSON 404, also with DEBUG on (where Django
    # would answer its HTML debug page instead of handler404).
    re_path(r"^api/", errors.not_found, name="api-not-found"),
]
