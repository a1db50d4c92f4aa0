"""Every curl example in the README and in docs/*.md, run against the Procfile's
processes; and the README's five-line demo, line by line.

Each answer must have the shape the document shows: the status, the success flag and
the same keys (all of them, or at least those shown where it trims with "…"). Ids,
times and counts differ from run to run; job ids in URLs are replaced by jobs created
first, a cursor by the one the previous answer gave, and a `sendAt` by its next
occurrence (the API refuses more than MAX_DELAY_MS ahead, so a fixed date goes stale).
"""

import json
import re
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from jobs.models import Workspace
from tests.conftest import wait_for_schedulers, wait_for_workers
from tests.support import ROOT, answers, free_port, procfile, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]
README_HOST = "http://localhost:3000"
# The README first, then the API reference (its examples build on each other), then
# the rest.
DOCUMENTS = ["README.md", "docs/api.md"]
DOCUMENTS += sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")
    if str(p.relative_to(ROOT)) not in DOCUMENTS
)  # fmt: skip
HEADING = re.compile(r"#{2,4} ")
SEND_AT = re.compile(r'"sendAt": "(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)([^"]*)"')
TIMEZONE = re.compile(r'"timezone": "([^"]+)"')
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Example:
    command: str
    answer: list[str] = field(default_factory=list)  # the README's answer lines
    quiet_hours: bool = False  # shown with workspace 66338's quiet hours on


def examples() -> list[Example]:
    return [e for document in DOCUMENTS for e in document_examples(ROOT / document)]


def document_examples(path) -> list[Example]:
    found, quiet = [], False
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("**Quiet hours.**"):
            quiet = True
        elif HEADING.match(line):
            quiet = False
        if line == "<!-- demo -->":
            # Run by test_readme_demo_runs_line_by_line.
            i = lines.index("```", i + 2) + 1
            continue
        if not line.startswith("curl "):
            i += 1
            continue
        command = [line]
        while command[-1].endswith("\\") or "".join(command).count("'") % 2:
            i += 1
            command.append(lines[i])
        example = Example("\n".join(command), quiet_hours=quiet)
        i += 1
        comments = []
        while i < len(lines) and lines[i].startswith("#"):
            comments.append(lines[i][1:].strip())
            i += 1
        example.answer = answer_lines(comments, lines[i:])
        found.append(example)
    return found


def answer_lines(comments: list[str], rest: list[str]) -> list[str]:
    if comments and comments[0].startswith("/"):
        return [c for c in comments if c.startswith("/")]
    if comments and re.match(r"(\d{3} )?\{", comments[0]):
        answer = [comments[0]]
        for comment in comments[1:]:
            if not comment or comment[0] not in '"{[':
                break
            answer.append(comment)
        return answer
    # The answer in the ```json block right after the command's block.
    if len(rest) > 2 and rest[0] == "```" and rest[1] == "" and rest[2] == "```json":
        end = rest.index("```", 3)
        return [" ".join(rest[3:end])]
    return []


def dst_kind(local: datetime, zone: ZoneInfo) -> str | None:
    """Whether a DST change skips this wall-clock time, repeats it, or neither."""
    aware = local.replace(tzinfo=zone)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
        return "nonexistent"
    if aware.utcoffset() != local.replace(tzinfo=zone, fold=1).utcoffset():
        return "ambiguous"
    return None


def upcoming(command: str, now: datetime) -> str:
    """The command with its sendAt at the next occurrence of the example's date and
    time (within a year); a time a DST change skips or repeats moves to the same
    change in the first year it is still ahead."""
    zones = TIMEZONE.findall(command)
    zone = ZoneInfo(zones[0] if zones else "America/New_York")  # workspace 66338

    def move(match) -> str:
        local, offset = datetime.fromisoformat(match[1]), match[2]
        kind = dst_kind(local, zone)
        for year in range(now.year, now.year + 3):
            days = [
                local.replace(year=year, day=1) + timedelta(days=n) for n in range(31)
            ]
            for day in days if kind else [local.replace(year=year)]:
                ahead = day.replace(tzinfo=zone) - now
                if day.month == local.month and dst_kind(day, zone) == kind:
                    if timedelta(hours=1) < ahead < timedelta(days=360):
                        return f'"sendAt": "{day.isoformat()}{offset}"'
        # The same date is a year away (or more): a week ahead, same time of day.
        day = datetime.combine(now.date() + timedelta(days=7), local.time())
        return f'"sendAt": "{day.isoformat()}{offset}"'

    return SEND_AT.sub(move, command)


def expected(answer: list[str]) -> tuple[int, dict, bool]:
    text = " ".join(answer)
    status, text = (int(text[:3]), text[4:]) if text[:3].isdigit() else (200, text)
    trimmed = bool(re.search(r",\s*…(?=\s*[,}\]])", text))
    return status, json.loads(re.sub(r",\s*…(?=\s*[,}\]])", "", text)), trimmed


def assert_same_shape(shown, actual, trimmed: bool, where: str) -> None:
    if isinstance(shown, dict):
        assert isinstance(actual, dict), where
        if trimmed:
            assert set(shown) <= set(actual), (where, set(shown) - set(actual))
        else:
            assert set(shown) == set(actual), (where, set(shown) ^ set(actual))
        for key, value in shown.items():
            assert_same_shape(value, actual[key], trimmed, f"{where}.{key}")
    elif isinstance(shown, list) and shown and actual:
        for value in actual:
            # Each item has one of the shapes shown (batch results differ).
            assert any(_same(s, value, trimmed) for s in shown), (where, value)
    if isinstance(shown, bool) or shown is None:
        if where.endswith(".success"):
            assert shown == actual, where


def _same(shown, actual, trimmed) -> bool:
    try:
        assert_same_shape(shown, actual, trimmed, "")
    except AssertionError:
        return False
    return True


@pytest.fixture
def service(start_process, backend):
    port = free_port()
    procfile = dict(
        line.split(": ", 1)
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.strip()
    )
    env = {"PORT": str(port), "HOST": "127.0.0.1", "WORKSPACE_CACHE_MS": "0"}
    for name in ("web", "worker", "scheduler"):
        start_process(name, procfile[name], **env)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{base}/health"), timeout=60, message="web")
    wait_for_workers(1)
    wait_for_schedulers(1)
    return base


def pending_sms(base: str, **extra) -> str:
    body = {"phoneNumber": "+1234567890", "message": "Hi", "contactId": "c1",
            "workspaceId": "66338", "delay": 3_600_000, **extra}  # fmt: skip
    answer = requests.post(f"{base}/api/schedule-sms", json=body, timeout=5).json()
    return answer["jobId"]


def test_every_readme_curl_example_answers_as_shown(service):
    base = service
    workspace = Workspace.objects.create(
        workspace_id="66338", timezone="America/New_York"
    )
    for _ in range(2):
        pending_sms(base, metadata={"campaignId": "spring-sale"})
    pending_sms(base, workspaceId="77001")
    job_ids: dict[str, str] = {}
    cursor = None
    found = examples()
    assert len(found) >= 26
    now = datetime.now(UTC)
    for example in found:
        quiet = (time(21), time(8)) if example.quiet_hours else (None, None)
        if (workspace.quiet_hours_start, workspace.quiet_hours_end) != quiet:
            workspace.quiet_hours_start, workspace.quiet_hours_end = quiet
            workspace.save()
        command = upcoming(example.command.replace(README_HOST, base), now)
        for readme_id in UUID.findall(command.split("\n")[0]):
            job_ids.setdefault(readme_id, pending_sms(base))
            command = command.replace(readme_id, job_ids[readme_id])
        if cursor and "cursor=" in command:
            command = re.sub(r"cursor=[^\"&]+", f"cursor={cursor}", command)
        where = example.command.split("\n")[0]
        if "|" in example.command.split("\n")[0]:
            out = subprocess.run(["bash", "-c", command], capture_output=True,
                                 text=True, timeout=30)  # fmt: skip
            assert out.returncode == 0 and out.stdout, where
            if example.answer:
                assert out.stdout.splitlines() == example.answer, where
            continue
        command = command.replace("curl ", "curl -s -w '\\n%{http_code}' ", 1)
        out = subprocess.run(["bash", "-c", command], capture_output=True,
                             text=True, timeout=30)  # fmt: skip
        body, _, code = out.stdout.rpartition("\n")
        assert example.answer, f"no answer shown for {where}"
        status, shown, trimmed = expected(example.answer)
        assert int(code) == status, (where, code, body)
        actual = json.loads(body)
        assert_same_shape(shown, actual, trimmed, where)
        assert actual.get("success") == shown.get("success"), (where, actual)
        cursor = actual.get("nextCursor") or cursor


def demo_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- demo -->\n```sh\n(.*?)```", readme, re.S)
    assert block, "no demo in the README"
    return block[1].replace("\\\n", "\n").splitlines()


def test_readme_demo_runs_line_by_line(start_process):
    sink, make_run, *schedule, stats = demo_lines()
    assert len(demo_lines()) <= 5
    # The stand-in backend, as written, on a free port.
    port = free_port()
    sink = sink.partition(" &")[0].replace("--port 4000", f"--port {port}")
    start_process("sink", sink)
    backend = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{backend}/__ping"), timeout=10, message="sink")
    # `make run` itself is tested by tests/test_first_start.py; here the processes
    # it starts, with the sink as the backend.
    assert make_run.startswith("make run &"), make_run
    service_port = free_port()
    env = {"PORT": str(service_port), "HOST": "127.0.0.1", "SMS_API_URL": backend}
    for name in ("web", "worker", "scheduler"):
        start_process(name, procfile()[name], **env)
    base = f"http://127.0.0.1:{service_port}"
    wait_for(lambda: answers(f"{base}/health"), timeout=60, message="web")
    wait_for_workers(1)
    wait_for_schedulers(1)
    command = " ".join(schedule).replace(README_HOST, base)
    out = subprocess.run(["bash", "-c", command], capture_output=True,
                         text=True, timeout=30)  # fmt: skip
    assert json.loads(out.stdout)["success"] is True, out
    command, _, shown = stats.partition("   # ")
    command = command.replace("http://localhost:4000", backend)

    def counted() -> bool:
        out = subprocess.run(["bash", "-c", command], capture_output=True,
                             text=True, timeout=30)  # fmt: skip
        return json.loads(out.stdout) == json.loads(shown)

    # As written (sleep 3), with some slack for a loaded machine.
    wait_for(counted, timeout=15, message=f"the sink to show {shown}")
