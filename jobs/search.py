"""Finding jobs by what operators know: an id, a contact, a recipient, a campaign."""

import re
import uuid

from django.db.models import Q, QuerySet

METADATA_TERM = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]{0,63}):(?P<value>.+)$")


def search_jobs(jobs: QuerySet, term: str) -> QuerySet:
    """Exact matches on indexed columns; `key:value` matches a metadata field.

    A job id, contact id, workspace id, phone number, email address or campaign id
    finds its jobs; `messageId:m-42` finds jobs whose metadata.messageId is m-42.
    """
    term = term.strip()
    if not term:
        return jobs
    metadata = METADATA_TERM.match(term)
    if metadata:
        key, value = metadata["key"], metadata["value"]
        return jobs.filter(
            Q(**{f"metadata__{key}": value}) | Q(**{f"payload__{key}": value})
        )
    match = (
        Q(contact_id=term)
        | Q(workspace_id=term)
        | Q(recipient=term)
        | Q(campaign_id=term)
    )
    try:
        match |= Q(id=uuid.UUID(term))
    except ValueError:
        pass
    return jobs.filter(match)
