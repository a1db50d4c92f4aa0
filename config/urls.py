from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("queueservices.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "queueservices.errors.bad_request"
handler404 = "queueservices.errors.not_found"
handler500 = "queueservices.errors.server_error"
