"""The schedule inputs' common bodies validated without DRF's field machinery.

DRF runs four to six calls per field (empty values, conversion, each validator),
a third of a 1,000-message batch's CPU and a tenth of a single request's
(cProfile). `quick_validated` reads the rules from the serializer's own fields
(their kinds, lengths, blank and null options, defaults) and the same checks
(queueservices.serializers), and returns what run_validation would return, but
only for a body it plainly accepts: a value it has no quick check for (sendAt,
timezone), any refusal and any other serializer is left to DRF (None), which
words the errors. tests/test_quickcheck.py compares the two on generated bodies.
"""

import re

from django.core import validators
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from queueservices.serializers import (
    E164,
    DelayField,
    EmailAddressField,
    IdField,
    MetadataField,
    PhoneNumberField,
    SendAtField,
    StrictBooleanField,
    StrictCharField,
    TimeZoneField,
    delay_error,
    id_error,
    is_email_address,
    validate_metadata,
)

# DRF's CharField refuses NUL and lone surrogates (its two prohibit validators).
_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")
# No quick check: given a value, the body goes to DRF; null or absent is plain.
_LEFT_TO_DRF = (SendAtField, TimeZoneField)


def quick_validated(form: serializers.Serializer, data) -> dict | None:
    """form.run_validation(data) for a body it accepts as plainly valid, else
    None (DRF decides)."""
    if not isinstance(data, dict):
        return None
    plan = _plans.get(type(form))
    if plan is None:
        plan = _plans[type(form)] = _plan(form)
    if plan is False:
        return None
    validated = {}
    for name, absent, allow_null, check in plan:
        value = data.get(name, empty)
        if value is empty:
            if absent is _REFUSED:
                return None
            if absent is not empty:
                validated[name] = absent
            continue
        if value is None:
            if not allow_null:
                return None
            validated[name] = None
            continue
        value = check(value)
        if value is _REFUSED:
            return None
        validated[name] = value
    return validated


_plans: dict[type, list | bool] = {}
# What a check returns for a value it does not plainly accept, and a plan's
# `absent` for a required field.
_REFUSED = object()


def _plan(form) -> list | bool:
    """(name, what an absent value gives, null allowed, check) per field, or False
    for a form whose rules go beyond what the checks here know: a field of another
    kind or with other validators, whitespace trimming, a validate() of the
    serializer's own. The fields' options are read here, once per form, and bound
    into each check: a 1,000-message batch read them 9,000 times."""
    if type(form).validate is not serializers.Serializer.validate or form.validators:
        return False
    plan = []
    for name, field in form.fields.items():
        make_check = next((c for kind, c in CHECKS if isinstance(field, kind)), None)
        if make_check is None or field.source != name or field.read_only:
            return False
        if getattr(field, "trim_whitespace", False) or not _known(field.validators):
            return False
        if field.default is not empty and callable(field.default):
            return False  # made anew per body: DRF's to call (`empty` is a class)
        plan.append((name, _absent(field), field.allow_null, make_check(field)))
    return plan


def _absent(field):
    """What run_validation gives a field left out: _REFUSED (required), None
    (DelayField: absent is null), the default, or `empty` (left out too)."""
    if field.required:
        return _REFUSED
    if isinstance(field, DelayField):
        return None
    if field.default is empty:
        return empty
    # As DRF's get_default: the default itself (plan() leaves callable ones to DRF).
    return field.default


def _known(field_validators) -> bool:
    # What CharField adds for its options; _text checks each of them.
    known = (
        validators.MaxLengthValidator,
        validators.MinLengthValidator,
        validators.ProhibitNullCharactersValidator,
        ProhibitSurrogateCharactersValidator,
    )
    return all(isinstance(v, known) for v in field_validators)


def _ident(field):
    return lambda value: value if id_error(value) is None else _REFUSED


def _delay(field):
    return lambda value: _REFUSED if delay_error(value) is not None else int(value)


def _boolean(field):
    return lambda value: value if isinstance(value, bool) else _REFUSED


def _metadata(field):
    def check(value):
        try:
            validate_metadata(value)
        except serializers.ValidationError:
            return _REFUSED
        return value

    return check


def _text(field):
    allow_blank, longest = field.allow_blank, field.max_length
    shortest = field.min_length

    def check(value):
        if not isinstance(value, str) or _UNSAFE_TEXT.search(value):
            return _REFUSED
        if value == "":
            return value if allow_blank else _REFUSED
        if longest is not None and len(value) > longest:
            return _REFUSED
        if shortest is not None and len(value) < shortest:
            return _REFUSED
        return value

    return check


def _phone(field):
    return _text_and(field, lambda value: E164.fullmatch(value) is not None)


def _email(field):
    return _text_and(field, lambda value: value != "" and is_email_address(value))


def _text_and(field, accepts):
    """The field's text check, then `accepts` on the text it let through."""
    text = _text(field)

    def check(value):
        value = text(value)
        return value if value is not _REFUSED and accepts(value) else _REFUSED

    return check


def _drf_only(field):
    return lambda value: _REFUSED


# Most specific first: the serializers' fields subclass StrictCharField.
CHECKS = [
    (_LEFT_TO_DRF, _drf_only),
    (PhoneNumberField, _phone),
    (EmailAddressField, _email),
    (StrictCharField, _text),
    (IdField, _ident),
    (DelayField, _delay),
    (StrictBooleanField, _boolean),
    (MetadataField, _metadata),
]
