"""Plan today's digests and enqueue them at once (what the 15-minute beat task does)."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from digest.management.commands.import_papers import iso_date
from digest.models import TrendingEntry
from digest.services.delivery import deliveries_plan


class Command(BaseCommand):
    help = "Plan and enqueue digest deliveries now. Workers send them."

    def add_arguments(self, parser):
        parser.add_argument("--date", type=iso_date, help="Edition day, YYYY-MM-DD (default: the latest day with trending papers)")
        parser.add_argument(
            "--now", action="store_true", help="Ignore send hours and weekdays: every confirmed reader due today"
        )

    def handle(self, *args, date=None, now=False, **options):
        day = date
        if day:
            if not TrendingEntry.objects.filter(date=day).exists():
                raise CommandError(f"No trending papers on {day}: nothing to send")
        plan = deliveries_plan(now=timezone.now(), day=day, ignore_hour=now)
        if plan.edition is None or plan.note:
            self.stdout.write(f"Nothing planned: {plan.note}")
            return
        self.stdout.write(
            f"Edition {plan.edition.date}: {len(plan.edition.paper_ids)} papers; "
            f"{plan.due} readers due, {plan.planned} deliveries planned in {plan.chunks} chunks"
        )
