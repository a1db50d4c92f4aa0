"""Reading one job by id, as often as clients poll it (GET /api/job-status/{id}).

Building a queryset's SQL is most of a small query's CPU (cProfile: 70% of a
job-status request was the compiler). The two statements a lookup needs, the job
and its attempts, are compiled by the ORM once per process and database, then
run as raw queries (jobs.rows.fetch_models): the same SQL, the same
rows, model instances as the ORM makes them.
"""

import uuid
from functools import lru_cache

from django.db import connections, router

from jobs.models import Job, JobAttempt
from jobs.rows import fetch_models

# Any id: only the SQL is kept; each lookup brings its own.
_PLACEHOLDER = uuid.UUID(int=0)


def job_with_attempts(job_id: uuid.UUID) -> tuple[Job, list[JobAttempt]] | None:
    """The job and its delivery attempts in order (attempt_log), or None."""
    alias = router.db_for_read(Job)
    job_sql, attempts_sql = _statements(alias)
    param = Job._meta.pk.get_db_prep_value(job_id, connections[alias])
    found = fetch_models(Job, job_sql, [param], using=alias)
    if not found:
        return None
    job = found[0]
    if not job.attempts:
        # Not yet tried (most polls of a scheduled message): no attempt rows.
        # The watchdog's write-off counts an attempt too, so none is missed.
        return job, []
    return job, fetch_models(JobAttempt, attempts_sql, [param], using=alias)


@lru_cache(maxsize=4)
def _statements(alias: str) -> tuple[str, str]:
    """SELECT statements for one job by id and for its attempts (Meta.ordering)."""
    job = Job.objects.using(alias).filter(pk=_PLACEHOLDER)
    attempts = JobAttempt.objects.using(alias).filter(job_id=_PLACEHOLDER)
    return _sql(job), _sql(attempts)


def _sql(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    if len(params) != 1:
        raise RuntimeError(f"expected one parameter, got {params!r}")
    return sql
