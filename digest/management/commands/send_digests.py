"""Plan today's digests and enqueue them at once (what the 15-minute beat task does)."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import ngettext

from digest.management.commands.import_papers import iso_date
from digest.models import Edition, TrendingEntry
from digest.plurals import counted
from digest.services.delivery import deliveries_plan
from digest.services.editions import papers_stale_warning
from subscriptions.models import Subscriber


class Command(BaseCommand):
    help = "Plan and enqueue digest deliveries now. Workers send them."

    def add_arguments(self, parser):
        parser.add_argument("--date", type=iso_date, help="Edition day, YYYY-MM-DD (default: the latest day with trending papers)")
        parser.add_argument(
            "--now", action="store_true", help="Ignore send hours: every confirmed reader due today (weekly readers on their weekday)"
        )

    def handle(self, *args, date=None, now=False, **options):
        day = date
        if day:
            if not TrendingEntry.objects.filter(date=day).exists():
                raise CommandError(f"No trending papers on {day}: nothing to send")
        started = timezone.now()
        plan = deliveries_plan(now=started, day=day, ignore_hour=now)
        if plan.edition is not None and plan.edition.status == Edition.Status.HELD:
            # Not "nothing to do": the edition waits for a person, and a script or cron must see that.
            raise CommandError(
                f"Nothing planned: {plan.note}. Release it in the admin (Editions, action “Release held "
                "editions”) and it goes out at the next planning run, or run this again."
            )
        if plan.edition is None or plan.note:
            self.stdout.write(f"Nothing planned: {plan.note}")
        else:
            self.stdout.write(
                f"Edition {plan.edition.date}: {counted(len(plan.edition.paper_ids), 'paper', 'papers')}; "
                f"{counted(plan.due, 'reader', 'readers')} due, "
                f"{counted(plan.planned, 'delivery', 'deliveries')} planned "
                f"in {counted(plan.chunks, 'chunk', 'chunks')}"
            )
            if not plan.due:
                self.stdout.write(_why_nobody_is_due(plan.edition, ignore_hour=now))
        if plan.edition is not None and (stale := papers_stale_warning(today=timezone.localdate(started))):
            self.stderr.write(stale, style_func=self.style.WARNING)


def _why_nobody_is_due(edition: Edition, *, ignore_hour: bool) -> str:
    """The operator's next question after '0 readers due'."""
    confirmed = Subscriber.objects.filter(status=Subscriber.Status.CONFIRMED)
    total = confirmed.count()
    if not total:
        return "No confirmed readers yet."
    have = confirmed.filter(deliveries__edition=edition).count()
    rest = total - have
    readers = counted(total, "confirmed reader", "confirmed readers")
    why = f"Of {readers}, {have} already {ngettext('has', 'have', have)} this edition"
    if rest:
        paused = ngettext("is", "are", rest)
        why += f"; the other {rest} had a digest today (one a day, their time), {paused} paused" + (
            f", or {ngettext('reads', 'read', rest)} weekly on another day"
            if ignore_hour
            else f", or {ngettext('waits', 'wait', rest)} for their hour or weekday (--now ignores the hour)"
        )
    return why + "."
