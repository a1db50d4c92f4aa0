"""When a message goes out: a delay or a sendAt, in a time zone, past quiet hours.

DST policy, the same for every zone:
- a local time that does not exist (the clock jumps over it in spring) moves
  forward to the first valid instant, the moment of the jump: 02:30 on the
  night New York goes 02:00 -> 03:00 is sent at 03:00 EDT;
- an ambiguous local time (the clock passes it twice in autumn) means its first
  occurrence: 01:30 on the night New York goes 02:00 -> 01:00 is 01:30 EDT.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

MAX_SEND_AT_LENGTH = 64
# Files of the system's zoneinfo directory that ZoneInfo opens but that name no
# IANA zone: they mean whatever the host is set to.
NOT_ZONES = frozenset({"localtime", "posixrules"})
NONEXISTENT = "nonexistent-moved-forward"
AMBIGUOUS = "ambiguous-first-occurrence"


class SendTimeError(ValueError):
    """A sendAt or timezone the client must fix; `field` names which."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class LocalInstant:
    at: datetime  # aware, UTC
    dst: str = ""  # "", NONEXISTENT or AMBIGUOUS


@dataclass(frozen=True)
class SendPlan:
    """The instant a job is due, and how it was arrived at (for the response)."""

    due_at: datetime  # aware, UTC: when the message goes out
    requested_for: datetime  # aware, UTC: what the client asked for
    planned_at: datetime  # aware, UTC: "now" when the plan was made
    timezone: ZoneInfo | None = None
    dst: str = ""
    deferred_reason: str = ""  # "", "quiet-hours" or "rate-limit"

    @property
    def delayed(self) -> bool:
        """Due later than now: the scheduler holds it (else straight to a queue)."""
        return self.due_at > self.planned_at

    @property
    def timezone_name(self) -> str:
        return self.timezone.key if self.timezone else ""

    def local(self, instant: datetime) -> str | None:
        """`instant` in the plan's time zone, ISO-8601 with its offset."""
        return instant.astimezone(self.timezone).isoformat() if self.timezone else None


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    """The IANA zone called `name`, or a SendTimeError."""
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise SendTimeError(field, "Must be an IANA time zone such as Europe/London.")
    if name in NOT_ZONES:
        raise SendTimeError(field, f"{name!r} is not an IANA time zone name.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: names like "America" that are directories of the database.
        raise SendTimeError(
            field, f"Unknown time zone {name!r}: use an IANA name like Europe/London."
        ) from None


def local_to_utc(wall: datetime, tz: ZoneInfo) -> LocalInstant:
    """The instant a naive local wall-clock time stands for, by the DST policy."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return LocalInstant(first)
    if _wall(first, tz) == wall:
        # Both readings exist: fold=0 is the earlier one, the first occurrence.
        return LocalInstant(min(first, second), AMBIGUOUS)
    # A gap: the jump lies between the two readings. Find the first instant
    # whose local time is at or past the wall time (local time only grows).
    lo, hi = min(first, second), max(first, second)
    low_s, high_s = int(lo.timestamp()), int(hi.timestamp()) + 1
    while low_s < high_s:
        mid = (low_s + high_s) // 2
        if _wall(datetime.fromtimestamp(mid, UTC), tz) >= wall:
            high_s = mid
        else:
            low_s = mid + 1
    return LocalInstant(datetime.fromtimestamp(low_s, UTC), NONEXISTENT)


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def parse_send_at(
    value, tz_name: str | None, default_tz: str | None = None
) -> tuple[LocalInstant, ZoneInfo | None]:
    """sendAt as an instant: ISO-8601 with an offset, or local time plus a zone.

    `tz_name` is the request's timezone, `default_tz` the workspace's; a local
    time needs one of them. With an offset the zone only names local times.
    """
    if not isinstance(value, str) or not value.strip():
        raise SendTimeError("sendAt", "Must be an ISO-8601 date-time string.")
    if len(value) > MAX_SEND_AT_LENGTH:
        raise SendTimeError("sendAt", "Too long for an ISO-8601 date-time.")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SendTimeError(
            "sendAt",
            "Not an ISO-8601 date-time: use 2026-12-01T09:00:00-05:00, or "
            "2026-12-01T09:00:00 with a timezone.",
        ) from None
    tz = zone(tz_name) if tz_name is not None else None
    if parsed.tzinfo is None and tz is None and default_tz:
        tz = zone(default_tz)
    if parsed.tzinfo is None and tz is None:
        raise SendTimeError(
            "timezone",
            "sendAt has no UTC offset: add one (…-05:00) or give a timezone.",
        )
    try:
        if parsed.tzinfo is not None:
            return LocalInstant(parsed.astimezone(UTC)), tz
        return local_to_utc(parsed, tz), tz
    except OverflowError:
        # Years 1 and 9999 near their ends: the instant falls outside datetime.
        raise SendTimeError("sendAt", "Date-time out of range.") from None


def quiet_hours_end(
    instant: datetime, tz: ZoneInfo, start: time, end: time
) -> datetime | None:
    """When quiet hours [start, end) in `tz` end, if `instant` falls inside them.

    A window may run past midnight (21:00-08:00). start == end means none.
    """
    if start == end:
        return None
    local = instant.astimezone(tz)
    now = local.time().replace(tzinfo=None)
    if start < end:
        inside, end_day = start <= now < end, local.date()
    else:
        inside = now >= start or now < end
        end_day = local.date() + timedelta(days=1) if now >= start else local.date()
    if not inside:
        return None
    end_wall = datetime.combine(end_day, end)
    end_at = local_to_utc(end_wall, tz).at
    if end_at <= instant:
        # `end` is ambiguous and `instant` lies in the repeated hour, past the
        # first reading of `end`: the clock next reads `end` the second time.
        end_at = end_wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return end_at


def plan_send(
    *,
    now: datetime,
    delay_ms: int | None = None,
    send_at: str | None = None,
    tz_name: str | None = None,
    workspace=None,
    respect_quiet_hours: bool = True,
    max_delay_ms: int | None = None,
) -> SendPlan:
    """The due instant for a delay (ms from `now`) or a sendAt, past quiet hours.

    `workspace` is a jobs.models.Workspace or None (no rules). A sendAt in the
    past is due at once. Raises SendTimeError for input the client must fix.
    """
    if delay_ms is not None and send_at is not None:
        raise SendTimeError("sendAt", "Give either delay or sendAt, not both.")
    workspace_tz = workspace.timezone if workspace is not None else None
    if send_at is not None:
        instant, tz = parse_send_at(send_at, tz_name, workspace_tz)
        requested, dst = max(instant.at, now), instant.dst
    else:
        tz = zone(tz_name) if tz_name is not None else None
        requested, dst = now + timedelta(milliseconds=delay_ms or 0), ""
    if max_delay_ms is not None and requested - now > timedelta(
        milliseconds=max_delay_ms
    ):
        raise SendTimeError(
            "sendAt" if send_at is not None else "delay",
            f"Must be at most {max_delay_ms} ms from now (MAX_DELAY_MS).",
        )
    due, reason = requested, ""
    if respect_quiet_hours and _has_quiet_hours(workspace):
        quiet_tz = zone(workspace.timezone, "workspace.timezone")
        end = quiet_hours_end(
            requested, quiet_tz, workspace.quiet_hours_start, workspace.quiet_hours_end
        )
        if end is not None:
            due, reason = end, "quiet-hours"
    # Local times are shown in the request's zone, else in the workspace's.
    if tz is None and workspace_tz:
        tz = zone(workspace_tz, "workspace.timezone")
    return SendPlan(due, requested, now, tz, dst, reason)


def _has_quiet_hours(workspace) -> bool:
    return (
        workspace is not None
        and workspace.quiet_hours_start is not None
        and workspace.quiet_hours_end is not None
    )


def plan_for_request(data: dict, *, now: datetime, workspace) -> SendPlan:
    """plan_send from an API request's validated fields (delay, sendAt, timezone,
    respectQuietHours): the one place the API's field names meet the planning.
    """
    delay_ms, send_at, tz_name, respect_quiet_hours = plan_inputs(data)
    return plan_send(
        now=now,
        delay_ms=delay_ms,
        send_at=send_at,
        tz_name=tz_name,
        workspace=workspace,
        respect_quiet_hours=respect_quiet_hours,
        max_delay_ms=settings.MAX_DELAY_MS,
    )


def plan_inputs(data: dict) -> tuple:
    """What of a request's validated fields its plan depends on (with its
    workspace and the time): two requests alike in these share a plan."""
    return (
        data.get("delay"),
        data.get("sendAt"),
        data.get("timezone"),
        data.get("respectQuietHours", True),
    )


def dst_rule_of(send_at, tz_name: str) -> str:
    """The DST rule a stored sendAt needed in `tz_name` ("" if none or unknown).

    For answers rebuilt from a job's row (idempotent replays), which keeps the
    request but not the rule.
    """
    if not isinstance(send_at, str) or not tz_name:
        return ""
    try:
        parsed = datetime.fromisoformat(send_at.strip())
        if parsed.tzinfo is not None:
            return ""
        return local_to_utc(parsed, zone(tz_name)).dst
    except (ValueError, OverflowError):  # SendTimeError is a ValueError
        return ""


def send_at_was_past(send_at, tz_name: str, requested_for: datetime | None) -> bool:
    """Whether a stored sendAt was already past when its job was scheduled.

    plan_send makes such a job due at once (requested_for is then "now", later than
    the sendAt); answers rebuilt from the row (replays) say so too.
    """
    if not isinstance(send_at, str) or requested_for is None:
        return False
    try:
        parsed = datetime.fromisoformat(send_at.strip())
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC) < requested_for
        if not tz_name:
            return False
        return local_to_utc(parsed, zone(tz_name)).at < requested_for
    except (ValueError, OverflowError):  # SendTimeError is a ValueError
        return False


def local_iso(instant: datetime | None, tz_name: str) -> str | None:
    """`instant` as ISO-8601 in the zone called `tz_name`, None without either."""
    if instant is None or not tz_name:
        return None
    try:
        return instant.astimezone(zone(tz_name)).isoformat()
    except (SendTimeError, OverflowError):
        return None
