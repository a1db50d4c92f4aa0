"""Schedule messages from a spreadsheet: `manage.py schedule_csv FILE`.

One row per message, the columns named as the API's fields (phoneNumber, message,
contactId, workspaceId, delay, sendAt, timezone, to, subject, html, type), and
`metadata.<key>` columns for metadata. Rows go through POST /api/schedule-batch's
validation and jobs.services.jobs_schedule_batch, `--chunk` rows at a time.
"""

import csv
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from jobs.services import ItemResult, QueueUnavailable, jobs_schedule_batch
from queueservices import plain
from queueservices.batch_endpoint import validate_messages

BOOLEANS = {"true": True, "yes": True, "1": True}
BOOLEANS |= {"false": False, "no": False, "0": False}


class Command(BaseCommand):
    help = "Schedule SMS and emails from a CSV file (one row per message)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV with a header row of API field names")
        parser.add_argument(
            "--type", choices=["sms", "email"], help="for rows without a type"
        )
        parser.add_argument(
            "--atomic",
            action="store_true",
            help="schedule nothing unless every row is valid (one batch for the file)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check every row, schedule nothing"
        )
        parser.add_argument("--chunk", type=int, default=1000, help="rows per batch")

    def handle(self, *args, **options):
        if options["chunk"] < 1:
            raise CommandError("--chunk must be at least 1.")
        rows = read_rows(options["file"])
        # Atomic: one batch, so a bad row anywhere keeps every row out.
        chunk = (len(rows) or 1) if options["atomic"] else options["chunk"]
        scheduled, refused = 0, []
        with tqdm(total=len(rows), unit="row", file=sys.stderr) as progress:
            for start in range(0, len(rows), chunk):
                results = self._schedule(rows[start : start + chunk], options)
                failures = [result for result in results if result.job is None]
                scheduled += len(results) - len(failures)
                refused += failures
                progress.update(len(results))
        # After the bar, so the two do not interleave on a terminal.
        for result in refused:
            self._report(result)
        failed = len(refused)
        verb = "would schedule" if options["dry_run"] else "scheduled"
        self.stdout.write(f"{verb} {scheduled}, failed {failed}")
        if failed:
            raise CommandError(f"{failed} row(s) not scheduled (see above).")

    def _schedule(self, rows, options) -> list[ItemResult]:
        messages, refused = [], []
        for line, row in rows:
            if isinstance(row, ItemResult):
                refused.append(row)
            else:
                messages.append((line, row))
        items, invalid = validate_messages(messages, default_type=options["type"])
        try:
            return jobs_schedule_batch(
                items=items,
                refused=refused + invalid,
                atomic=options["atomic"],
                dry_run=options["dry_run"],
            )
        except QueueUnavailable as exc:
            raise CommandError(f"Redis is unavailable ({exc}); stopped.") from exc

    def _report(self, result: ItemResult) -> None:
        for field, messages in result.errors.items():
            for message in messages:
                self.stderr.write(f"line {result.index}: {field}: {message}")


def read_rows(path: str) -> list[tuple[int, dict | ItemResult]]:
    """(line number, message) per row; a row that cannot be a message is refused."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            return [(reader.line_num, row_message(reader.line_num, r)) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CommandError(f"Cannot read {path}: {exc}") from exc


def row_message(line: int, row: dict) -> dict | ItemResult:
    """A CSV row as the API's JSON message: empty cells left out, numbers typed."""
    if None in row:
        return ItemResult(line, errors={"row": ["More cells than header columns."]})
    message: dict = {}
    for column, value in row.items():
        if value is None or value.strip() == "":
            continue
        if column.startswith("metadata."):
            message.setdefault("metadata", {})[column.removeprefix("metadata.")] = value
        else:
            message[column] = _typed(column, value)
    return message


def _typed(column: str, value: str):
    # Left as text when it does not convert: validation then names the column.
    # ASCII digits only: "٣٠٠".isdigit() is true, and so is "²", which int() refuses.
    if column == "delay" and (number := plain.whole_number(value.strip())) is not None:
        return number
    if column == "respectQuietHours":
        return BOOLEANS.get(value.strip().lower(), value)
    return value
