"""python manage.py import_subscribers FILE.csv [--confirmed]

The columns are listed in COLUMNS_HELP, which --help shows. Bad rows are reported with their
line number and skipped; good rows are imported. Existing and suppressed addresses are left
alone, so running it twice changes nothing.
"""

import argparse
import csv
import io
import re
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.utils.translation import ngettext

from digest.plurals import counted
from subscriptions import services
from subscriptions.forms import DIGEST_SIZE_MAX, DIGEST_SIZE_MIN, WEEKDAYS, SignupForm
from subscriptions.selectors import topic_list_active, topics_by_reference

COLUMNS_HELP = f"""\
columns (a header row names them, in any order; each row needs topics or interests):
  email (required)
  topics        topic slugs or names, separated by ';' or '|'
  interests     free text, e.g. "diffusion models, video generation"
  frequency     daily or weekly (default daily)
  weekday       0-6 or a day name (0 = Monday, mon, ...); weekly only (default Monday)
  send_hour     local hour 0-23 (default 7)
  timezone      an IANA name, e.g. Europe/Berlin (default {settings.TIME_ZONE_DEFAULT})
  digest_size   papers per digest, {DIGEST_SIZE_MIN}-{DIGEST_SIZE_MAX} (default 10)
Bad rows are reported with their line number and skipped; existing and suppressed
addresses are left alone, so running it twice changes nothing.
"""

COLUMNS = {"email", "topics", "interests", "frequency", "weekday", "send_hour", "timezone", "digest_size"}
DAY_NAMES = {name.lower(): number for number, name in WEEKDAYS} | {name[:3].lower(): number for number, name in WEEKDAYS}


class _RawEpilogHelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


class ImportForm(SignupForm):
    """The signup form's rules: a row with no topic and no interests would get a digest of
    nothing but the day's trending papers, so it is a bad row like any other."""

    topics_or_interests_message = "the row has no topics and no interests; give at least one"


class Command(BaseCommand):
    help = "Import subscribers from a CSV file (double opt-in unless --confirmed)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # The column list is laid out one a line: printed as written, not rewrapped.
        kwargs.setdefault("formatter_class", _RawEpilogHelpFormatter)
        kwargs.setdefault("epilog", COLUMNS_HELP)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file with a header row (columns below)")
        parser.add_argument(
            "--confirmed",
            action="store_true",
            help="The addresses already consented elsewhere: import them as confirmed, send no confirmation email",
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text ({exc})") from exc

        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = [column.strip().lower() for column in next(reader)]
        except StopIteration:
            raise CommandError(f"{path} is empty") from None
        if "email" not in header:
            raise CommandError(f"{path}: the header row needs an 'email' column (found: {', '.join(header) or 'nothing'})")
        unknown_columns = [column for column in header if column and column not in COLUMNS]
        if unknown_columns:
            self.stderr.write(f"Ignoring unknown columns: {', '.join(unknown_columns)}")

        topics = topic_list_active()
        counts = {outcome: 0 for outcome in services.ImportOutcome}
        bad = 0
        line = reader.line_num
        while True:
            start = line + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self.stderr.write(f"line {start}: unreadable CSV ({exc})")
                bad += 1
                line = reader.line_num
                continue
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                self.stderr.write(f"line {start}: {len(row)} values but {len(header)} columns")
                bad += 1
                continue
            record = {column: value.strip() for column, value in zip(header, row) if column in COLUMNS}
            problems, form = self._validate(record, topics)
            if problems:
                bad += 1
                self.stderr.write(f"line {start}: " + "; ".join(problems))
                continue
            outcome = services.subscriber_import(
                email=form.cleaned_data["email"], preferences=form.preferences(), confirmed=options["confirmed"]
            )
            counts[outcome] += 1

        self.stdout.write(
            f"Imported {counts[services.ImportOutcome.CREATED_PENDING] + counts[services.ImportOutcome.CREATED_CONFIRMED]}"
            f" ({counts[services.ImportOutcome.CREATED_CONFIRMED]} confirmed,"
            f" {counts[services.ImportOutcome.CREATED_PENDING]} sent a confirmation email);"
            f" skipped {counts[services.ImportOutcome.EXISTING]} already present,"
            f" {counts[services.ImportOutcome.SUPPRESSED]} suppressed; {counted(bad, 'bad row', 'bad rows')}."
        )
        if bad:
            raise CommandError(
                f"{counted(bad, 'row', 'rows')} {ngettext('was', 'were', bad)} not imported; "
                "see the line numbers above. The other rows were imported."
            )

    def _validate(self, record: dict, topics) -> tuple[list[str], ImportForm | None]:
        problems = []
        references = [part for part in re.split(r"[;|]", record.get("topics", "")) if part.strip()]
        found, unknown = topics_by_reference(references=references)
        if unknown:
            problems.append(f"topics: unknown {', '.join(repr(u) for u in unknown)}")
        weekday = record.get("weekday", "") or "0"
        weekday = str(DAY_NAMES.get(weekday.lower(), weekday))
        data = {
            "email": record.get("email", ""),
            "topics": [topic.slug for topic in found],
            "interests": record.get("interests", ""),
            "frequency": (record.get("frequency", "") or "daily").lower(),
            "weekday": weekday,
            "send_hour": record.get("send_hour", "") or "7",
            "timezone": record.get("timezone", "") or settings.TIME_ZONE_DEFAULT,
            "digest_size": record.get("digest_size", "") or "10",
        }
        form = ImportForm(data, topics=topics)
        if not form.is_valid():
            for field, errors in form.errors.items():
                problems.append(f"{field}: {' '.join(errors)}")
        return problems, (form if not problems else None)
