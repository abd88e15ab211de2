"""Print the digest one subscriber would get for a day, without sending or recording anything."""

import datetime
import json

from django.core.management.base import BaseCommand, CommandError

from digest.matching import latest_trending_date, select_for_subscriber
from subscriptions.models import Subscriber


class Command(BaseCommand):
    help = "Show exactly the papers (title, arXiv id, score, reasons) a subscriber's digest would hold."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="The subscriber's address.")
        parser.add_argument("--date", help="YYYY-MM-DD; default: the latest day that has trending papers.")
        parser.add_argument("--json", action="store_true", help="Print one JSON array.")

    def handle(self, *args, **options):
        email = options["email"].strip().lower()
        subscriber = Subscriber.objects.filter(email__iexact=email).first()
        if subscriber is None:
            raise CommandError(f"No subscriber with the address {email!r}.")
        if options["date"]:
            try:
                day = datetime.date.fromisoformat(options["date"])
            except ValueError:
                raise CommandError(f"--date must be YYYY-MM-DD, not {options['date']!r}.") from None
        else:
            day = latest_trending_date()
            if day is None:
                raise CommandError("No trending papers yet; import some first (manage.py import_papers demo/*.txt).")
        picks = select_for_subscriber(subscriber=subscriber, day=day)
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
        self.stdout.write(f"Digest for {subscriber.email} on {day.isoformat()}: {len(picks)} paper(s)")
        for n, p in enumerate(picks, 1):
            self.stdout.write(f"{n:2d}. {p.paper.title}")
            self.stdout.write(f"    arXiv {p.paper.arxiv_id or '-'}  score {p.score:.3f}  {'; '.join(p.reasons)}")
