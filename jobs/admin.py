from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.template.response import TemplateResponse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import Truncator

from jobs import services
from jobs.apikeys import apikey_create, apikey_revoke
from jobs.models import (
    ApiKey,
    AuditEntry,
    Job,
    JobAttempt,
    PausedScope,
    Workspace,
    short_job_id,
)
from jobs.queues import DELIVERY_QUEUES
from jobs.search import search_jobs
from jobs.sendtime import SendTimeError, zone
from jobs.workspaces import forget_cached_workspaces

# The copy button's icon (an SVG: no font needed), here and on the dashboard.
COPY_ICON = (
    '<svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true">'
    '<rect x="5" y="5" width="9" height="9" rx="1" fill="none" stroke="currentColor"'
    ' stroke-width="1.5"/><path d="M3 11V3a1 1 0 0 1 1-1h7" fill="none"'
    ' stroke="currentColor" stroke-width="1.5"/></svg>'
)


class WorkspaceFilter(admin.SimpleListFilter):
    """A text box, not a list: there may be thousands of workspaces."""

    title = "workspace"
    parameter_name = "workspace"
    template = "admin/input_filter.html"

    def lookups(self, request, model_admin):
        return [("", "")]

    def choices(self, changelist):
        # The other active filters and the search, kept as hidden fields of the box.
        params = changelist.get_filters_params()
        parts = [
            (key, value)
            for key, values in params.items()
            if key != self.parameter_name
            for value in (values if isinstance(values, list) else [values])
        ]
        if changelist.query:
            parts.append(("q", changelist.query))
        yield {"query_parts": parts}

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        return queryset.filter(workspace_id=value) if value else queryset


class QueueFilter(admin.SimpleListFilter):
    """The delivery queues by name: Django's own filter would find them with a
    SELECT DISTINCT over every row (127 ms of a 190 ms page at 1,000,000 jobs)."""

    title = "queue"
    parameter_name = "queue__exact"

    def lookups(self, request, model_admin):
        return [(name, name) for name in sorted(DELIVERY_QUEUES)]

    def queryset(self, request, queryset):
        return queryset.filter(queue=self.value()) if self.value() else queryset


class JobAttemptInline(admin.TabularInline):
    model = JobAttempt
    extra = 0
    can_delete = False
    fields = readonly_fields = [
        "number",
        "started_at",
        "duration_ms",
        "http_status",
        "error",
        "succeeded",
    ]

    def has_add_permission(self, request, obj=None):
        return False


def _run_action(modeladmin, request, queryset, service, verb: str) -> None:
    done, refused = 0, []
    for job_id in queryset.values_list("id", flat=True):
        try:
            service(job_id=job_id, actor=request.user.get_username())
            done += 1
        except (services.IllegalTransition, services.QueueUnavailable) as exc:
            refused.append(str(exc))
    if done:
        modeladmin.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS)
    if refused:
        modeladmin.message_user(
            request, f"{len(refused)} refused: {refused[0]}", messages.WARNING
        )


@admin.action(description="Retry selected failed jobs")
def retry_jobs(modeladmin, request, queryset):
    _run_action(modeladmin, request, queryset, services.job_retry, "Retried")


@admin.action(description="Remove (cancel) selected waiting or delayed jobs")
def remove_jobs(modeladmin, request, queryset):
    # Asks first, as Django's own "delete selected" does, saying how many it touches.
    if request.POST.get("post") != "yes":
        pending = queryset.filter(status__in=services.CANCELLABLE).count()
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": "Cancel jobs?",
            "ids": [str(pk) for pk in queryset.values_list("id", flat=True)],
            "selected": queryset.count(),
            "pending": pending,
            "others": queryset.count() - pending,
            "action": "remove_jobs",
            "opts": modeladmin.model._meta,
        }
        return TemplateResponse(request, "admin/jobs/confirm_cancel.html", context)
    _run_action(modeladmin, request, queryset, services.job_cancel, "Removed")


@admin.action(description="Promote selected delayed jobs (run now)")
def promote_jobs(modeladmin, request, queryset):
    _run_action(modeladmin, request, queryset, services.job_promote, "Promoted")


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows, so a page costs the same with a million
    jobs as with a thousand (bench/scale.py: the full COUNT doubled the list's time).
    Past the cap the list says "10001 jobs" and pages stop at the cap; filters and
    search narrow it down, and the dashboard has the exact counts per status.
    """

    COUNT_CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.COUNT_CAP + 1].count()


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "short_id",
        "status",
        "queue",
        "workspace",
        "contact",
        "recipient",
        "scheduled",
        "attempts",
        "error",
    ]
    list_display_links = ["short_id"]
    list_filter = ["status", "type", QueueFilter, WorkspaceFilter, "created_at"]
    search_fields = ["contact_id"]  # shows the box; search_jobs does the matching
    search_help_text = (
        "Job id, contact id, workspace id, phone number, email address, campaign id, "
        "or metadataKey:value"
    )
    ordering = ["-created_at"]
    # Counting every row twice per page is the slow part of a big changelist.
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    actions = [retry_jobs, remove_jobs, promote_jobs]
    inlines = [JobAttemptInline]
    # Status changes go through jobs.services (the actions), never through this form.
    readonly_fields = [field.name for field in Job._meta.fields]

    class Media:
        # The copy buttons of the ids; the stylesheet keeps the table within 1280 px.
        js = ["queueservices/dashboard.js"]
        css = {"all": ["queueservices/admin.css"]}

    @admin.display(description="ID", ordering="id")
    def short_id(self, job):
        full = str(job.id)
        return format_html(
            '<code class="id" title="{}">{}</code><button type="button" class="copy"'
            ' data-copy="{}" title="Copy {}" aria-label="Copy job id">'
            + COPY_ICON
            + "</button>",
            full,
            short_job_id(full),
            full,
            full,
        )

    # Short headings: the table fits 1280 px (the queue names the type).
    @admin.display(description="Workspace", ordering="workspace_id")
    def workspace(self, job):
        return job.workspace_id

    @admin.display(description="Contact", ordering="contact_id")
    def contact(self, job):
        return job.contact_id

    @admin.display(description="Scheduled (UTC)", ordering="scheduled_for")
    def scheduled(self, job):
        return f"{job.scheduled_for:%Y-%m-%d %H:%M:%S}"

    def changelist_view(self, request, extra_context=None):
        # Without the app list beside it the table fits 1280 px (« opens it anyway).
        extra_context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    @admin.display(description="Last error")
    def error(self, job):
        return Truncator(job.last_error).chars(60)

    def get_search_results(self, request, queryset, search_term):
        return search_jobs(queryset, search_term), False

    def has_add_permission(self, request):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows to look at, never to add, change or delete here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "job", "queue", "detail"]
    list_filter = ["action", "actor"]
    search_fields = ["=actor", "=queue"]
    readonly_fields = ["at", "actor", "action", "job", "queue", "detail"]
    list_select_related = ["job"]


@admin.register(PausedScope)
class PausedScopeAdmin(ReadOnlyAdmin):
    """Read-only: pauses are started and ended over the API (pause, resume, cancel),
    which also move the jobs; a row deleted here would leave its jobs paused."""

    list_display = ["__str__", "campaign_id", "workspace_id", "paused_at", "actor"]
    search_fields = ["=campaign_id", "=workspace_id"]
    readonly_fields = ["campaign_id", "workspace_id", "paused_at", "actor"]


@admin.action(description="Revoke selected API keys")
def revoke_keys(modeladmin, request, queryset):
    for api_key in queryset:
        apikey_revoke(api_key=api_key)
    modeladmin.message_user(
        request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS
    )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "workspace_id",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    fields = ["name", "workspace_id"]
    actions = [revoke_keys]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # The clear key exists only in this message; the database keeps its hash.
        api_key, key = apikey_create(name=obj.name, workspace_id=obj.workspace_id)
        obj.pk = api_key.pk
        self.message_user(
            request,
            f"New API key (copy it now, it is not shown again): {key}",
            messages.WARNING,
        )

    def has_change_permission(self, request, obj=None):
        return obj is None

    def has_delete_permission(self, request, obj=None):
        return False


class WorkspaceForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = [
            "workspace_id",
            "timezone",
            "quiet_hours_start",
            "quiet_hours_end",
            "rate_limit",
        ]

    def clean_timezone(self):
        name = self.cleaned_data["timezone"]
        try:
            zone(name)
        except SendTimeError as exc:
            raise forms.ValidationError(exc.message) from None
        return name

    def clean(self):
        cleaned = super().clean()
        start = cleaned.get("quiet_hours_start")
        end = cleaned.get("quiet_hours_end")
        if (start is None) != (end is None):
            raise forms.ValidationError("Set both ends of the quiet hours, or neither.")
        if start is not None and start == end:
            raise forms.ValidationError(
                "Quiet hours must start and end at different times "
                "(leave both empty for none)."
            )
        return cleaned


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceForm
    list_display = [
        "workspace_id",
        "timezone",
        "quiet_hours_start",
        "quiet_hours_end",
        "rate_limit",
    ]
    search_fields = ["=workspace_id"]
    ordering = ["workspace_id"]

    # Other processes see the change within WORKSPACE_CACHE_MS; this one at once.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        forget_cached_workspaces()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        forget_cached_workspaces()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        forget_cached_workspaces()
