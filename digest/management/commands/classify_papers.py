"""Embed and classify papers synchronously: those missing scores, or --all."""

from django.core.management.base import BaseCommand

from digest.services.classify import papers_classify_missing
from digest.plurals import counted


class Command(BaseCommand):
    help = "Compute missing paper embeddings and topic scores now (no worker needed). --all rescores every paper."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Rescore every paper, not only those missing scores.")

    def handle(self, *args, **options):
        embedded, classified = papers_classify_missing(everything=options["all"])
        self.stdout.write(
            f"embedded {counted(embedded, 'paper', 'papers')}, classified {counted(classified, 'paper', 'papers')}"
        )
