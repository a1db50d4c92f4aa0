"""jobs.jsontext: orjson's text, read back as the standard library's."""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from jobs.jsontext import column_text, column_value
from queueservices.renderers import FastJSONRenderer

ANSWER = {
    "jobId": uuid.UUID("12345678-1234-4234-8234-123456789abc"),
    "scheduledFor": datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC),
    "text": 'héllo \u2028 line \u2029 para \x1f "quoted" \\',
    "error": gettext_lazy("This field is required."),
    "numbers": [0, -1, 2**63 - 1, 1.5, 1e-7, 1e16, Decimal("2.50")],
    "nested": {"empty": {}, "list": [], "none": None, "yes": True},
}


def test_the_api_answer_is_drf_s_bytes_where_numbers_are_spelt_alike():
    plain = {k: v for k, v in ANSWER.items() if k != "numbers"}
    plain["numbers"] = [0, -1, 2**63 - 1, 1.5, Decimal("2.50")]
    assert FastJSONRenderer().render(plain) == JSONRenderer().render(plain)


def test_the_api_answer_reads_back_as_drf_s_with_any_number():
    fast, drf = FastJSONRenderer().render(ANSWER), JSONRenderer().render(ANSWER)
    assert json.loads(fast) == json.loads(drf)
    assert b"\\u2028" in fast and b"\\u2029" in fast


def test_what_orjson_refuses_is_written_by_the_standard_library():
    # Beyond 64 bits, a key that is not a string, a lone surrogate.
    for value in ({"n": 2**70}, {1: "one"}, {"s": "\ud800"}):
        assert json.loads(column_text(value)) == json.loads(json.dumps(value))
    for value in ({"n": 2**70}, {1: "one"}):
        assert FastJSONRenderer().render(value) == JSONRenderer().render(value)
    # No UTF-8 for a lone surrogate: an answer holding one fails as DRF's does.
    for renderer in (FastJSONRenderer(), JSONRenderer()):
        with pytest.raises(UnicodeEncodeError):
            renderer.render({"s": "\ud800"})


def test_an_indent_asked_for_goes_to_drf():
    media = "application/json; indent=2"
    assert FastJSONRenderer().render(ANSWER, media) == JSONRenderer().render(
        ANSWER, media
    )


def test_a_column_holds_the_value_with_its_characters_as_they_are():
    value = {"message": "héllo ☃", "metadata": {"campaignId": "c-1"}, "n": [1, 2.5]}
    text = column_text(value)
    assert json.loads(text) == value and "☃" in text


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(ANSWER, default=str),
        '{"n": 123456789012345678901234567890, "m": -9223372036854775809}',
        '{"phone": "+14155550100", "id": "1234567890123456789012"}',
        '{"x": NaN, "y": Infinity}',
        '"\\ud800"',
        '{"a": 1, "a": 2}',
        "not json",
        "",
    ],
)
def test_a_column_reads_back_as_django_reads_it(text):
    from django.db.models import JSONField

    expected = JSONField().from_db_value(text, None, None)
    got = column_value(text)
    # NaN is not equal to itself: compare the texts the standard library writes.
    assert json.dumps(got) == json.dumps(expected)
    assert type(got) is type(expected)


def test_a_null_column_reads_back_as_none():
    assert column_value(None) is None
