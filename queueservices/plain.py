"""Numbers and job ids from text, in ASCII only.

Python reads any Unicode digit as a digit: int("٣٠٠") is 300, str.isdigit() is true
for "²" (which int() then refuses), uuid.UUID() takes Arabic-Indic or fullwidth
digits. A value a client can spell two ways is one that a proxy, a log search or a
cache sees as two: what the API reads from text takes [0-9] (and [a-f]) only.
"""

import re
import uuid

WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")
# A job id as the API writes it (8-4-4-4-12), or its 32 hex digits alone.
JOB_ID = re.compile(r"[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}")


def whole_number(text: str, *, negative: bool = True) -> int | None:
    """The integer `text` spells in ASCII digits (a leading "-" when `negative`),
    without spaces, signs or underscores otherwise; None if it is not one."""
    if not isinstance(text, str) or not WHOLE_NUMBER.fullmatch(text):
        return None
    if text.startswith("-") and not negative:
        return None
    return int(text)


def job_uuid(text: str) -> uuid.UUID:
    """The job id in `text`, as uuid.UUID() but without its other spellings
    (braces, "urn:uuid:", other digits); ValueError if it is not one."""
    if not JOB_ID.fullmatch(text):
        raise ValueError(f"not a job id: {text!r}")
    return uuid.UUID(text)
