from django.urls import re_path

from queueservices import views

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
        r"^api/job-status/(?P<job_id>[^/]+)/?$",
        views.JobStatusView.as_view(),
        name="job-status",
    ),
    re_path(r"^health/?$", views.HealthView.as_view(), name="health"),
]
