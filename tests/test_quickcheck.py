"""queueservices.quickcheck accepts only what the serializers accept, and returns
what they return (generated bodies, valid and hostile, field by field)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from queueservices.quickcheck import quick_validated
from queueservices.serializers import ScheduleEmailInput, ScheduleSmsInput

REFUSED = "refused"

texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "a\x00b", "\ud800", "x" * 999, "hi", "+14155550123"]),
)
anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), texts,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(texts, st.integers(), max_size=2),
)  # fmt: skip
ids = st.one_of(
    st.sampled_from(["c-1", "ws-1", 42, 0, -1, True, "", "  ", "x" * 256]), anything
)
phones = st.one_of(
    st.sampled_from(["+14155550123", "+1", "+1٤١٥٥٥٥٠١٢٣", "14155550123", "+0123"]),
    st.from_regex(r"\+[0-9]{1,16}", fullmatch=True),
    anything,
)
delays = st.one_of(
    st.sampled_from([0, 1000, 1.0, 1.5, -1, True, 10**15, "5", None]), anything
)
metadata = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "campaignId": texts,
            "callbackEndpoint": st.one_of(
                st.sampled_from(["/send", "//evil", "/a/../b", "/ok?x=1", None, 5]),
                texts,
            ),
            "idempotencyKey": texts,
        },
    ),
    anything,
)
emails = st.one_of(
    st.sampled_from(["a@example.com", "nobody", "ſ@example.com", "a@１２３.com"]),
    st.emails(),
    anything,
)
common = {
    "contactId": ids,
    "workspaceId": ids,
    "delay": delays,
    "sendAt": st.one_of(st.none(), st.just("2030-01-01T09:00:00Z"), anything),
    "timezone": st.one_of(st.none(), st.just("America/New_York"), anything),
    "respectQuietHours": st.one_of(st.booleans(), anything),
    "metadata": metadata,
    "extra": anything,
}
SMS = {
    "contactId": "c-1",
    "workspaceId": 7,
    "phoneNumber": "+14155550123",
    "message": "hi",
}
EMAIL = {"contactId": "c-1", "workspaceId": "ws-1", "to": "a@example.com"}


def bodies(valid: dict, fields: dict):
    """A valid body with a few fields changed to generated values or removed, so
    that most bodies are one or two fields away from valid."""
    changed = st.dictionaries(
        st.sampled_from(sorted(fields)), st.none(), min_size=1, max_size=3
    ).flatmap(
        lambda names: st.fixed_dictionaries({name: fields[name] for name in names})
    )
    removed = st.sets(st.sampled_from(sorted(valid)), max_size=1)
    return st.builds(
        lambda changes, gone: {
            k: v for k, v in {**valid, **changes}.items() if k not in gone
        },
        changed,
        removed,
    )


sms_bodies = bodies(SMS, {**common, "phoneNumber": phones, "message": texts})
email_bodies = bodies(
    {**EMAIL, "subject": "s", "html": "<p>x</p>"},
    {**common, "to": emails, "subject": texts, "html": texts},
)


def drf(form, body):
    try:
        return dict(form.run_validation(body))
    except ValidationError:
        return REFUSED


def agrees(form, body) -> None:
    quick = quick_validated(form, body)
    if quick is not None:
        assert drf(form, body) == quick, body


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(sms_bodies)
def test_sms_bodies(body):
    agrees(ScheduleSmsInput(), body)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(email_bodies)
def test_email_bodies(body):
    agrees(ScheduleEmailInput(), body)


@pytest.mark.parametrize(
    ("form", "body"),
    [
        (ScheduleSmsInput(), SMS),
        (ScheduleSmsInput(), {**SMS, "delay": 5000, "respectQuietHours": False}),
        (ScheduleSmsInput(), {**SMS, "metadata": {"callbackEndpoint": "/s"}}),
        (ScheduleSmsInput(), {**SMS, "sendAt": None, "timezone": None}),
        (ScheduleEmailInput(), {**EMAIL, "subject": "", "html": "<p>x</p>"}),
    ],
)
def test_the_common_bodies_take_the_quick_path(form, body):
    quick = quick_validated(form, body)
    assert quick is not None and quick == drf(form, body)


@pytest.mark.parametrize(
    "changes",
    [
        {"sendAt": "2030-01-01T09:00:00Z"},
        {"timezone": "America/New_York"},
        {"phoneNumber": "+1٤١٥٥٥٥٠١٢٣"},
        {"message": ""},
        {"delay": -1},
    ],
)
def test_anything_else_is_left_to_drf(changes):
    assert quick_validated(ScheduleSmsInput(), {**SMS, **changes}) is None
