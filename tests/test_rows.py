"""jobs.rows makes the same instances the ORM makes, and writes the same rows."""

import json
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, models
from django.test.utils import CaptureQueriesContext

from jobs.models import Job, JobAttempt
from jobs.rows import fetch_models, insert_rows, new_instance
from jobs.services.attempts import DELIVERY_FIELDS, AttemptRow

pytestmark = pytest.mark.django_db


def _job(**changes) -> Job:
    fields = {
        "type": Job.Type.SMS,
        "queue": "send-sms-queue",
        "workspace_id": "ws-1",
        "contact_id": "c-1",
        "payload": {"message": "hi", "n": [1, 2]},
        "metadata": {"campaignId": "x"},
        "callback_url": "http://backend/send-sms",
        "scheduled_for": datetime(2026, 12, 1, 9, tzinfo=UTC),
        "due_at": datetime(2026, 12, 1, 9, tzinfo=UTC),
        "max_attempts": 3,
        **changes,
    }
    return Job.objects.create(**fields)


def test_fetched_jobs_equal_the_orm_s_with_the_same_fields_deferred():
    job = _job()
    sql = "SELECT {} FROM jobs_job WHERE id = %s".format(
        ", ".join(
            f.column for f in Job._meta.concrete_fields if f.name in DELIVERY_FIELDS
        )
    )
    pk = Job._meta.pk.get_db_prep_value(job.id, connection)
    [fast] = fetch_models(Job, sql, [pk], DELIVERY_FIELDS, using="default")
    orm = Job.objects.only(*DELIVERY_FIELDS).get(pk=job.pk)
    assert fast.get_deferred_fields() == orm.get_deferred_fields()
    for name in DELIVERY_FIELDS:
        assert getattr(fast, name) == getattr(orm, name), name
    assert (fast._state.adding, fast._state.db) == (False, "default")
    # A deferred field loads on first use, as the ORM's does.
    assert fast.contact_id == "c-1"
    fast.status = Job.Status.COMPLETED
    fast.save(update_fields=["status"])
    assert Job.objects.get(pk=job.pk).status == Job.Status.COMPLETED


def test_attempts_inserted_from_namedtuples_are_the_model_s_rows():
    job = _job()
    started = datetime(2026, 12, 1, 9, 0, 1, tzinfo=UTC)
    row = AttemptRow(job.pk, 1, started, 12, 500, "HTTP 500", False)
    insert_rows(JobAttempt, [row], using="default", upsert_on=("job", "number"))
    # The same number again: the row is overwritten, not doubled.
    again = row._replace(http_status=200, error="", succeeded=True)
    insert_rows(JobAttempt, [again], using="default", upsert_on=("job", "number"))
    [stored] = JobAttempt.objects.filter(job=job)
    assert (stored.number, stored.started_at, stored.duration_ms) == (1, started, 12)
    assert (stored.http_status, stored.error, stored.succeeded) == (200, "", True)
    assert uuid.UUID(str(stored.job_id)) == job.id


def test_any_row_and_update_where_in_as_the_orm():
    from jobs.models import PausedScope
    from jobs.rows import any_row, update_where_in

    assert not any_row(PausedScope, using="default")
    PausedScope.objects.create(workspace_id="ws-1", paused_at=datetime.now(UTC))
    assert any_row(PausedScope, using="default")
    first, second, third = _job(), _job(), _job()
    now = datetime(2026, 12, 1, 9, 0, 2, tzinfo=UTC)
    changes = {"status": Job.Status.COMPLETED, "finished_at": now, "last_error": ""}
    update_where_in(Job, changes, [first.pk, second.pk], using="default")
    done = Job.objects.filter(status=Job.Status.COMPLETED, finished_at=now)
    assert set(done.values_list("pk", flat=True)) == {first.pk, second.pk}
    assert Job.objects.get(pk=third.pk).finished_at is None


def _job_values(**changes) -> dict:
    return {
        "id": uuid.uuid4(),
        "type": Job.Type.EMAIL,
        "queue": "send-email-queue",
        "workspace_id": "ws-2",
        "contact_id": "c-2",
        "recipient": "a@example.com",
        "payload": {"subject": "é", "n": [1, {"x": None}]},
        "callback_url": "http://backend/send-email",
        "status": Job.Status.DELAYED,
        "max_attempts": 4,
        # Aware, not in UTC: stored as the same instant.
        "due_at": datetime(2026, 12, 1, 11, tzinfo=ZoneInfo("Europe/Paris")),
        "scheduled_for": datetime(2026, 12, 1, 10, tzinfo=UTC),
        "requested_for": None,
        **changes,
    }


def test_new_instance_is_the_model_s_instance_without_init():
    values = _job_values()
    fast, orm = new_instance(Job, values), Job(**values)
    for field in Job._meta.concrete_fields:
        assert getattr(fast, field.attname) == getattr(orm, field.attname), field.name
    assert fast._state.adding and fast._state.db is None
    # A callable default is called per instance, never shared.
    other = new_instance(Job, _job_values())
    assert fast.metadata == {} and fast.metadata is not other.metadata


# A few rows are prepared value by value, more column by column (jobs.rows).
@pytest.mark.parametrize("count", [2, 20])
def test_inserted_rows_are_what_the_orm_writes(count):
    created = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    orm = Job(**_job_values(created_at=created))
    orm.save(force_insert=True)
    Job.objects.filter(pk=orm.pk).update(created_at=created)  # auto_now_add
    # Rows sharing their times (prepared once), with a choices member.
    fast = [new_instance(Job, _job_values(created_at=created)) for _ in range(count)]
    insert_rows(Job, fast, using="default")
    fields = [f for f in Job._meta.concrete_fields if f.name != "id"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT {} FROM jobs_job WHERE id IN ({})".format(
                ", ".join(f.column for f in fields), ", ".join(["%s"] * (count + 1))
            ),
            [Job._meta.pk.get_db_prep_value(j.pk, connection) for j in [orm, *fast]],
        )
        stored = cursor.fetchall()
    # A JSON column holds the same value; its text may be spaced otherwise
    # (jobs.jsontext writes it compact, the ORM with ", " and ": ").
    decoded = [
        tuple(
            json.loads(value)
            if isinstance(field, models.JSONField) and isinstance(value, str)
            else value
            for field, value in zip(fields, row, strict=True)
        )
        for row in stored
    ]
    assert len(decoded) == count + 1 and all(row == decoded[0] for row in decoded)
    assert all(not job._state.adding for job in fast)
    assert Job.objects.get(pk=fast[0].pk).due_at == orm.due_at


def test_columns_constant_in_an_insert_are_written_as_literals_and_others_bound():
    # 0, '' and NULL in every row: in the statement. One row apart, or a value of
    # another type equal to 0 (False): bound, each row its own value.
    created = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    jobs = [new_instance(Job, _job_values(created_at=created)) for _ in range(20)]
    jobs[-1].attempts, jobs[-1].last_error, jobs[-1].last_http_status = 2, "x", 503
    for job in jobs:
        job.webhook_attempts = False  # an int column, a bool value: not the literal 0
    with CaptureQueriesContext(connection) as queries:
        insert_rows(Job, jobs, using="default")
    [insert] = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert "NULL" in insert and "''" in insert  # started_at, worker ...
    stored = {
        job.pk: (job.attempts, job.last_error, job.last_http_status, job.worker,
                 job.started_at, job.webhook_attempts)
        for job in Job.objects.filter(pk__in=[j.pk for j in jobs])
    }  # fmt: skip
    assert stored[jobs[-1].pk] == (2, "x", 503, "", None, 0)
    assert all(stored[job.pk] == (0, "", None, "", None, 0) for job in jobs[:-1]), (
        stored
    )


def test_updated_and_returned_jobs_hold_what_the_rows_hold():
    from jobs.rows import update_returning

    waiting, delayed, active = (
        _job(status=Job.Status.WAITING),
        _job(status=Job.Status.DELAYED, attempts=1),
        _job(status=Job.Status.ACTIVE),
    )
    # In another zone: the instance holds the instant given, the row the same one.
    started = datetime(2026, 12, 1, 10, 0, 3, 5, tzinfo=ZoneInfo("Europe/Paris"))
    changes = {"status": Job.Status.ACTIVE, "started_at": started, "worker": "w-1"}
    returned = update_returning(
        Job,
        changes,
        ("attempts",),
        [waiting.pk, delayed.pk, active.pk, uuid.uuid4()],
        [Job.Status.WAITING, Job.Status.DELAYED],
        DELIVERY_FIELDS,
        using="default",
    )
    # The active row is someone else's attempt, the unknown id no row at all.
    assert {job.pk for job in returned} == {waiting.pk, delayed.pk}
    for fast in returned:
        orm = Job.objects.only(*DELIVERY_FIELDS).get(pk=fast.pk)
        assert fast.get_deferred_fields() == orm.get_deferred_fields()
        for name in DELIVERY_FIELDS:
            assert getattr(fast, name) == getattr(orm, name), name
        assert type(fast.pk) is uuid.UUID
    assert {job.pk: job.attempts for job in returned} == {waiting.pk: 1, delayed.pk: 2}
    assert Job.objects.get(pk=active.pk).worker == ""
