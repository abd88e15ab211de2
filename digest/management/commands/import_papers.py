"""import_papers PATH... : load trending pages, HF daily_papers JSON or arXiv Atom files."""

import argparse
import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from digest.plurals import counted
from digest.services.ingest import IngestResult, papers_ingest
from digest.sources import FORMATS, SourceError, parse_papers


def iso_date(value: str) -> datetime.date:
    # argparse turns ArgumentTypeError into a one-line usage error (exit 2); anything
    # else raised from a type= callable escapes as a traceback.
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2024-03-12") from None


class Command(BaseCommand):
    help = (
        "Import paper lists. Each file is imported in its own transaction: a bad file is "
        "reported and skipped as a whole, the others still import. Exit status 1 if any file failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--format", choices=FORMATS, default="auto")
        parser.add_argument(
            "--date",
            type=iso_date,
            help="YYYY-MM-DD. Trending pages: the page's year is the one that puts its day on or before this "
            "date (default today). HF/arXiv: the trending day for every paper (default: from the file).",
        )
        parser.add_argument(
            "--no-enqueue",
            action="store_true",
            help="Do not queue the new papers' embedding and classification for the matching worker; "
            "run classify_papers afterwards (beat's hourly safety net also catches up).",
        )

    def handle(self, *args, paths, format, date, no_enqueue, **options):
        total = IngestResult()
        failed = []
        for path in paths:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                failed.append(path)
                self.stderr.write(f"{path}: cannot read: {exc.strerror or exc}")
                continue
            try:
                with transaction.atomic():
                    records = parse_papers(data, name=path, format=format, date=date)
                    result = papers_ingest(records=records, announce=not no_enqueue)
            except SourceError as exc:
                failed.append(path)
                self.stderr.write(str(exc.located(path)))
                continue
            except IntegrityError as exc:
                # Another import or fetch wrote the same paper at the same moment; nothing of this file was kept.
                failed.append(path)
                self.stderr.write(f"{path}: a concurrent import wrote the same papers, try again ({exc})")
                continue
            total += result
            self.stdout.write(f"{path}: {counted(len(records), 'paper', 'papers')}: {result.summary()}")
        failed_words = f"; {counted(len(failed), 'file', 'files')} failed" if failed else ""
        self.stdout.write(f"total: {total.summary()}{failed_words}")
        if failed:
            raise CommandError(
                f"{len(failed)} of {counted(len(paths), 'file', 'files')} not imported: {', '.join(failed)}"
            )
