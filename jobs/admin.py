from django.contrib import admin

from jobs.models import Job, JobAttempt


class JobAttemptInline(admin.TabularInline):
    model = JobAttempt
    extra = 0
    can_delete = False
    readonly_fields = [
        "number",
        "started_at",
        "duration_ms",
        "http_status",
        "error",
        "succeeded",
    ]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "status", "queue", "workspace_id", "contact_id"]
    list_display += ["scheduled_for", "attempts", "last_error"]
    list_filter = ["status", "type", "queue"]
    search_fields = ["=id", "=contact_id", "=workspace_id"]
    date_hierarchy = "created_at"
    inlines = [JobAttemptInline]
    # Status changes go through jobs.services, never through this form.
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request):
        return False
