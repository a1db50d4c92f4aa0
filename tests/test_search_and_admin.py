"""Finding jobs (dashboard and Django admin), and the admin's actions."""

import pytest

from jobs.broker import get_queue
from jobs.models import AuditEntry, Job
from tests.support import EMAIL, SMS, basic, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(client):
    made = {
        "sms": post(
            client,
            "/api/schedule-sms",
            {
                **SMS,
                "phoneNumber": "+14155550123",
                "contactId": "c-1",
                "workspaceId": "ws-a",
                "metadata": {"campaignId": "camp-9", "messageId": "m-42"},
            },
        ),
        "email": post(
            client,
            "/api/schedule-email",
            {
                **EMAIL,
                "to": "ann@example.com",
                "contactId": "c-2",
                "workspaceId": "ws-b",
            },
        ),
    }
    return {name: response.json()["jobId"] for name, response in made.items()}


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return user


SEARCHES = [
    ("+14155550123", "sms"),
    ("ann@example.com", "email"),
    ("camp-9", "sms"),
    ("c-2", "email"),
    ("ws-a", "sms"),
    ("messageId:m-42", "sms"),
]


@pytest.mark.parametrize(("term", "expected"), SEARCHES)
def test_dashboard_search_finds_the_job(client, jobs, settings, term, expected):
    settings.BULL_BOARD_PASSWORD = "pw"
    response = client.get("/admin/queues/jobs", {"q": term}, **basic("admin", "pw"))
    page = response.content.decode()
    assert jobs[expected] in page
    other = "email" if expected == "sms" else "sms"
    assert jobs[other] not in page


def test_dashboard_search_by_job_id(client, jobs, settings):
    settings.BULL_BOARD_PASSWORD = "pw"
    response = client.get(
        "/admin/queues/jobs", {"q": jobs["email"]}, **basic("admin", "pw")
    )
    assert jobs["email"] in response.content.decode()
    assert jobs["sms"] not in response.content.decode()


@pytest.mark.parametrize(("term", "expected"), SEARCHES)
def test_admin_search_finds_the_job(client, staff, jobs, term, expected):
    response = client.get("/admin/jobs/job/", {"q": term})
    assert response.status_code == 200
    ids = {str(job.id) for job in response.context["cl"].result_list}
    assert ids == {jobs[expected]}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "waiting"}, {"sms", "email"}),
        ({"type__exact": "email"}, {"email"}),
        ({"queue__exact": "send-sms-queue"}, {"sms"}),
        ({"workspace": "ws-b"}, {"email"}),
        ({"workspace": "ws-b", "type__exact": "sms"}, set()),
    ],
)
def test_admin_filters(client, staff, jobs, params, expected):
    response = client.get("/admin/jobs/job/", params)
    assert response.status_code == 200
    ids = {str(job.id) for job in response.context["cl"].result_list}
    assert ids == {jobs[name] for name in expected}


def test_admin_job_page_shows_the_job(client, staff, jobs):
    response = client.get(f"/admin/jobs/job/{jobs['sms']}/change/")
    assert response.status_code == 200
    assert "+14155550123" in response.content.decode()


def test_admin_remove_action_asks_first_then_goes_through_the_service(
    client, staff, jobs, redis
):
    chosen = {"action": "remove_jobs", "_selected_action": [jobs["sms"]]}
    asked = client.post("/admin/jobs/job/", chosen).content.decode()
    assert "Cancel 1 of the 1 selected job(s)" in asked
    assert Job.objects.get(pk=jobs["sms"]).status == "waiting"

    response = client.post("/admin/jobs/job/", {**chosen, "post": "yes"}, follow=True)
    assert response.status_code == 200
    assert Job.objects.get(pk=jobs["sms"]).status == "cancelled"
    assert Job.objects.get(pk=jobs["email"]).status == "waiting"
    assert get_queue("send-sms-queue").job_ids == []
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action) == ("root", "cancel")


def test_admin_refuses_an_illegal_action_with_a_message(client, staff, jobs):
    response = client.post(
        "/admin/jobs/job/",
        {"action": "retry_jobs", "_selected_action": [jobs["sms"]]},
        follow=True,
    )
    assert "1 refused: Cannot retry a job that is waiting" in response.content.decode()
    assert Job.objects.get(pk=jobs["sms"]).status == "waiting"


def test_admin_list_counts_only_up_to_the_cap(client, staff, jobs, monkeypatch):
    from jobs.admin import CappedCountPaginator

    for _ in range(3):
        post(client, "/api/schedule-sms", SMS)
    monkeypatch.setattr(CappedCountPaginator, "COUNT_CAP", 3)

    cl = client.get("/admin/jobs/job/").context["cl"]

    # Five jobs: the count stops one past the cap; the page still lists its rows.
    assert Job.objects.count() == 5
    assert cl.result_count == 4
    assert len(cl.result_list) == 5
    monkeypatch.setattr(CappedCountPaginator, "COUNT_CAP", 10)
    assert client.get("/admin/jobs/job/").context["cl"].result_count == 5
