"""manage.py schedule_csv: a spreadsheet of messages through the batch service."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from jobs.models import Job
from tests.support import queued_ids, scheduled_ids

pytestmark = pytest.mark.django_db

SMS_CSV = """\
phoneNumber,message,contactId,workspaceId,delay,metadata.campaignId,metadata.idempotencyKey
+14155550101,"Hello, Ann",c-1,ws-1,,spring,
+14155550102,Hello Bob,c-2,ws-1,60000,spring,row-2
555-1234,Bad number,c-3,ws-1,,spring,
+14155550104,Hello Dee,c-4,ws-1,soon,spring,
+14155550105,Hello Eve,c-5,ws-1,0,spring,row-2
"""


def run(tmp_path, text: str, *args) -> tuple[str, str, Exception | None]:
    path = tmp_path / "messages.csv"
    path.write_text(text, encoding="utf-8")
    out, err = StringIO(), StringIO()
    try:
        call_command("schedule_csv", str(path), *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def test_valid_rows_are_scheduled_and_bad_rows_reported_by_line(tmp_path, redis):
    out, err, failure = run(tmp_path, SMS_CSV, "--type", "sms", "--chunk", "2")

    assert "scheduled 2, failed 3" in out
    assert "line 4: phoneNumber:" in err
    assert "line 5: delay:" in err
    # Same key as line 3, another message: refused like the API's 409.
    assert "line 6: idempotencyKey:" in err
    assert failure is not None and "3 row(s)" in str(failure)
    ann = Job.objects.get(contact_id="c-1")
    bob = Job.objects.get(contact_id="c-2")
    assert ann.payload == {
        "phoneNumber": "+14155550101",
        "message": "Hello, Ann",
        "contactId": "c-1",
        "workspaceId": "ws-1",
        "metadata": {"campaignId": "spring"},
    }
    assert (ann.status, ann.campaign_id) == ("waiting", "spring")
    assert (bob.status, bob.idempotency_key, bob.payload["delay"]) == (
        "delayed",
        "row-2",
        60000,
    )
    assert queued_ids(redis, "send-sms-queue") == [str(ann.id)]
    assert scheduled_ids() == [str(bob.id)]
    assert Job.objects.count() == 2


def test_a_type_column_mixes_sms_and_email(tmp_path):
    text = (
        "type,to,subject,html,phoneNumber,message,contactId,workspaceId\n"
        "email,a@example.com,Hi,<p>Hi</p>,,,c-1,ws-1\n"
        "sms,,,,+14155550101,Hi,c-2,ws-1\n"
        ",,,,+14155550102,Hi,c-3,ws-1\n"
    )
    out, err, failure = run(tmp_path, text)

    assert "scheduled 2, failed 1" in out
    assert "line 4: type:" in err
    assert sorted(Job.objects.values_list("type", flat=True)) == ["email", "sms"]


def test_atomic_schedules_nothing_when_a_row_is_bad(tmp_path, redis):
    out, err, failure = run(tmp_path, SMS_CSV, "--type", "sms", "--atomic")

    assert "scheduled 0, failed 5" in out and failure is not None
    assert Job.objects.count() == 0 and redis.dbsize() == 0


def test_dry_run_checks_every_row_and_creates_nothing(tmp_path, redis):
    out, err, failure = run(tmp_path, SMS_CSV, "--type", "sms", "--dry-run")

    assert "would schedule 2, failed 3" in out
    assert "line 4: phoneNumber:" in err
    assert Job.objects.count() == 0 and redis.dbsize() == 0


def test_a_clean_file_exits_without_error_and_shows_progress(tmp_path, capfd):
    rows = "".join(f"+1415555{i:04},Hi {i},c-{i},ws-1\n" for i in range(25))
    out, err, failure = run(
        tmp_path, "phoneNumber,message,contactId,workspaceId\n" + rows, "--type=sms"
    )

    assert failure is None and "scheduled 25, failed 0" in out
    assert Job.objects.count() == 25
    # tqdm writes its bar to the real stderr.
    assert "25/25" in capfd.readouterr().err


def test_a_row_with_extra_cells_or_an_unreadable_file_is_reported(tmp_path):
    text = "phoneNumber,message,contactId,workspaceId\n+14155550101,Hi,c-1,ws-1,extra\n"
    out, err, failure = run(tmp_path, text, "--type=sms")
    assert "line 2: row:" in err and Job.objects.count() == 0

    with pytest.raises(CommandError, match="Cannot read"):
        call_command("schedule_csv", str(tmp_path / "missing.csv"))
