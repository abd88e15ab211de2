"""fetch_papers --source hf|arxiv : download today's papers and import them."""

from django.core.management.base import BaseCommand, CommandError

from digest.management.commands.import_papers import iso_date
from digest.services.ingest import papers_fetch
from digest.sources import SourceError
from digest.sources.download import FetchError


class Command(BaseCommand):
    help = "Fetch papers from Hugging Face daily papers or the arXiv API and import them (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--source", choices=["hf", "arxiv"], required=True)
        parser.add_argument("--date", type=iso_date, help="YYYY-MM-DD: that day's papers (default: the latest)")
        parser.add_argument(
            "--category",
            action="append",
            dest="categories",
            metavar="CATEGORY",
            help="arXiv category, repeatable (default: settings.ARXIV_CATEGORIES)",
        )

    def handle(self, *args, source, date, categories, **options):
        if categories and source != "arxiv":
            raise CommandError("--category only applies to --source arxiv")
        try:
            result = papers_fetch(source=source, date=date, categories=categories)
        except FetchError as exc:
            raise CommandError(str(exc)) from exc
        except SourceError as exc:
            raise CommandError(f"malformed response: {exc}") from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{source}: {result.summary()}")
