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
    for name, field, check in plan:
        value = data.get(name, empty)
        if value is empty:
            if field.required:
                return None
            if isinstance(field, DelayField):
                validated[name] = None  # DelayField: absent is null
            elif field.default is not empty:
                validated[name] = field.get_default()
            continue
        if value is None:
            if not field.allow_null:
                return None
            validated[name] = None
            continue
        ok, value = check(field, value)
        if not ok:
            return None
        validated[name] = value
    return validated


_plans: dict[type, list | bool] = {}


def _plan(form) -> list | bool:
    """(name, field, check) per field, or False for a form whose rules go beyond
    what the checks here know: a field of another kind or with other validators,
    whitespace trimming, a validate() of the serializer's own."""
    if type(form).validate is not serializers.Serializer.validate or form.validators:
        return False
    plan = []
    for name, field in form.fields.items():
        check = next((c for kind, c in CHECKS if isinstance(field, kind)), None)
        if check is None or field.source != name or field.read_only:
            return False
        if getattr(field, "trim_whitespace", False) or not _known(field.validators):
            return False
        plan.append((name, field, check))
    return plan


def _known(field_validators) -> bool:
    # What CharField adds for its options; _text checks each of them.
    known = (
        validators.MaxLengthValidator,
        validators.MinLengthValidator,
        validators.ProhibitNullCharactersValidator,
        ProhibitSurrogateCharactersValidator,
    )
    return all(isinstance(v, known) for v in field_validators)


def _ident(field, value):
    return id_error(value) is None, value


def _delay(field, value):
    if delay_error(value) is not None:
        return False, value
    return True, int(value)


def _boolean(field, value):
    return isinstance(value, bool), value


def _metadata(field, value):
    try:
        validate_metadata(value)
    except serializers.ValidationError:
        return False, value
    return True, value


def _text(field, value):
    if not isinstance(value, str) or _UNSAFE_TEXT.search(value):
        return False, value
    if value == "":
        return field.allow_blank, value
    too_long = field.max_length is not None and len(value) > field.max_length
    short = field.min_length is not None and len(value) < field.min_length
    return not (too_long or short), value


def _phone(field, value):
    ok, value = _text(field, value)
    return ok and E164.fullmatch(value) is not None, value


def _email(field, value):
    ok, value = _text(field, value)
    return ok and value != "" and is_email_address(value), value


def _drf_only(field, value):
    return False, value


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
