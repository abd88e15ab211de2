"""Tasks: fetch papers on beat's schedule."""

import datetime

from celery import shared_task

from digest.services.ingest import papers_fetch

__all__ = ["fetch_papers_task"]


@shared_task(name="digest.tasks.fetch_papers_task")
def fetch_papers_task(*, source: str, date: str | None = None, categories: list[str] | None = None) -> dict:
    """Fetch one source and ingest it. The service retries HTTP itself; a failure here is logged by Celery
    and the next scheduled run tries again."""
    day = datetime.date.fromisoformat(date) if date else None
    result = papers_fetch(source=source, date=day, categories=categories)
    return {"new": result.new, "updated": result.updated, "unchanged": result.unchanged}
