"""Small pieces of the operator pages (and the Job admin)."""

from django import template
from django.utils.html import format_html

from jobs.admin import COPY_ICON
from jobs.models import short_job_id

register = template.Library()


@register.simple_tag
def job_id(value, href: str = "") -> str:
    """A job id as its last 8 characters (short_job_id), monospace (a link to
    `href` if given), the whole id in its title, and a button that copies it
    (dashboard.js)."""
    full = str(value)
    short = format_html(
        '<code class="id" title="{}">{}</code>', full, short_job_id(full)
    )
    if href:
        short = format_html('<a href="{}">{}</a>', href, short)
    return format_html(
        '<span class="job-id">{}<button type="button" class="copy" data-copy="{}"'
        ' title="Copy {}" aria-label="Copy job id">' + COPY_ICON + "</button></span>",
        short,
        full,
        full,
    )


@register.simple_tag(takes_context=True)
def sort_link(context, key: str, label: str) -> str:
    """A column heading that sorts the job list by `key`, newest first on the first
    click, and flips the order on the next; the other parameters are kept."""
    request, current = context["request"], context["sort"]
    descending = current == f"-{key}"
    params = request.GET.copy()
    params["sort"] = key if descending else f"-{key}"
    params.pop("page", None)
    arrow = " ↓" if descending else " ↑" if current == key else ""
    return format_html(
        '<a class="sort" data-sort="{}" href="?{}">{}{}</a>',
        key,
        params.urlencode(),
        label,
        arrow,
    )
