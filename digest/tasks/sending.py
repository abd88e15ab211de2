"""Tasks: sending. Thin adapters; the services hold the logic and the database the truth."""

from celery import current_task, shared_task
from django.core.cache import cache
from django.utils import timezone

from digest.services import delivery, tracking

__all__ = [
    "deliveries_plan_task",
    "deliveries_send_chunk_task",
    "deliveries_reconcile_task",
    "tracking_event_process_task",
]


@shared_task(name="digest.tasks.deliveries_plan_task")
def deliveries_plan_task() -> dict:
    # Planning is idempotent (unique rows, ignore_conflicts), so a second beat by
    # mistake sends nothing twice; this lock only spares the duplicate work.
    if not cache.add("paperboy:lock:deliveries-plan", "1", timeout=14 * 60):
        return {"skipped": "another planner is running"}
    try:
        plan = delivery.deliveries_plan(now=timezone.now())
    finally:
        cache.delete("paperboy:lock:deliveries-plan")
    return {"edition": str(plan.edition.date) if plan.edition else None, "planned": plan.planned, "note": plan.note}


@shared_task(name="digest.tasks.deliveries_send_chunk_task")
def deliveries_send_chunk_task(delivery_ids: list[int], vector_waits: int = 0) -> dict:
    result = delivery.deliveries_send_chunk(delivery_ids=[int(i) for i in delivery_ids], vector_waits=int(vector_waits))
    return {"sent": result.sent, "skipped": result.skipped, "failed": result.failed, "retrying": result.retrying,
            "waiting": result.waiting}


def deliveries_retry_later(*, delivery_ids: list[int], countdown: float, vector_waits: int = 0) -> None:
    """Queue a retry on the queue the current chunk came from (the default one outside a worker)."""
    info = (current_task.request.delivery_info or {}) if current_task else {}
    queue = info.get("routing_key")
    options = {"queue": queue} if queue else {}
    kwargs = {"vector_waits": vector_waits} if vector_waits else {}
    deliveries_send_chunk_task.apply_async(args=[delivery_ids], kwargs=kwargs, countdown=countdown, **options)


@shared_task(name="digest.tasks.deliveries_reconcile_task")
def deliveries_reconcile_task() -> dict:
    out = delivery.deliveries_reconcile(now=timezone.now())
    return {"requeued": out.requeued, "skipped": out.skipped, "editions_done": out.editions_done}


@shared_task(name="digest.tasks.tracking_event_process_task")
def tracking_event_process_task(webhook_event_id: int) -> str:
    return tracking.tracking_event_process(webhook_event_id=webhook_event_id)
