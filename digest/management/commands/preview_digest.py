"""Print the digest sending would send one subscriber for a day, without sending or recording anything."""

import datetime
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from digest.management.commands.import_papers import iso_date
from digest.models import Delivery, Edition, TrendingEntry
from digest.plurals import counted
from digest.services.delivery import subscriber_next_digest
from digest.services.editions import edition_candidate_ids, edition_latest_day, edition_readers_picks
from subscriptions.addresses import email_normalize
from subscriptions.models import Subscriber, Suppression


def _why_nothing_is_sent(*, subscriber: Subscriber, day: datetime.date) -> str:
    """Why sending would send this subscriber nothing for `day` ('' when it would send)."""
    if subscriber.status != Subscriber.Status.CONFIRMED:
        return f"{subscriber.email} is {subscriber.get_status_display().lower()}: sending sends them nothing"
    if Suppression.objects.filter(email=subscriber.email).exists():
        return f"{subscriber.email} is suppressed: sending sends them nothing"
    if subscriber.paused_until and subscriber.paused_until >= timezone.localdate():
        return f"{subscriber.email} has paused their digest until {subscriber.paused_until}: sending sends them nothing"
    edition = Edition.objects.filter(date=day).first()
    if edition is not None and edition.status == Edition.Status.HELD:
        return f"the {day} edition is held ({edition.hold_reason or 'no reason given'}): nothing is sent until it is released"
    delivery = Delivery.objects.filter(edition__date=day, subscriber=subscriber).first()
    if delivery is not None and delivery.state not in (Delivery.State.PENDING, Delivery.State.SENDING):
        return (
            f"{subscriber.email} already has the {day} edition ({delivery.get_state_display().lower()}): sending "
            "sends nothing more; the papers already sent to them are left out below"
        )
    # Planning's own rule (one digest per local day), as `send_digests --now` applies it.
    upcoming = subscriber_next_digest(subscriber=subscriber, now=timezone.now())
    if upcoming.had_today:
        return (
            f"{subscriber.email} has had today's digest (one a day, their time): sending sends them nothing "
            f"more today; the next comes {upcoming.when}"
        )
    return ""


class Command(BaseCommand):
    help = (
        "Show the papers (title, arXiv id, score, reasons) that sending would put in a subscriber's digest "
        "for a day, from the same candidates (the frozen edition's, once it is frozen)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="The subscriber's address.")
        parser.add_argument(
            "--date", type=iso_date, help="YYYY-MM-DD; default: the day sending would send (the latest with trending papers)."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON array (notes go to stderr).")

    def handle(self, *args, **options):
        email = email_normalize(options["email"])
        subscriber = Subscriber.objects.filter(email__iexact=email).first()
        if subscriber is None:
            raise CommandError(f"No subscriber with the address {email!r}.")
        if options["date"]:
            day = options["date"]
            # As send_digests: a day without trending papers has nothing to send.
            if not TrendingEntry.objects.filter(date=day).exists():
                raise CommandError(f"No trending papers on {day}: nothing to send")
        else:
            day = edition_latest_day(today=timezone.now().date())  # the day deliveries_plan picks
            if day is None:
                raise CommandError("No trending papers yet; import some first (manage.py import_papers demo/*.txt).")
        candidates = edition_candidate_ids(day=day)
        if not candidates:
            raise CommandError(f"No papers to send on {day} (every trending paper is hidden)")
        note = _why_nothing_is_sent(subscriber=subscriber, day=day)
        if note:
            self.stderr.write(f"Note: {note}.")
        picks = edition_readers_picks(day=day, subscribers=[subscriber], candidate_ids=candidates).get(subscriber.pk, [])
        if not picks and not note:
            self.stderr.write("Note: nothing new for this reader that day: sending would skip them.")
        if options["json"]:
            rows = [
                {
                    "paper_id": p.paper_id,
                    "title": p.paper.title,
                    "arxiv_id": p.paper.arxiv_id,
                    "score": p.score,
                    "reasons": p.reasons,
                    "trending": p.trending,
                    "pinned": p.pinned,
                }
                for p in picks
            ]
            self.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        self.stdout.write(
            f"Digest for {subscriber.email} on {day.isoformat()}: {counted(len(picks), 'paper', 'papers')}"
        )
        for n, p in enumerate(picks, 1):
            self.stdout.write(f"{n:2d}. {p.paper.title}")
            self.stdout.write(f"    arXiv {p.paper.arxiv_id or '-'}  score {p.score:.3f}  {'; '.join(p.reasons)}")
