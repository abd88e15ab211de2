"""Tasks: embed and classify papers, store phrase vectors; receivers that enqueue them when papers,
topics or subscribers' interests change. All are routed to the `matching` queue (settings.CELERY_TASK_ROUTES):
the only workers that load the model."""

import logging

from celery import chain, shared_task
from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from digest.models import Topic
from digest.signals import papers_changed
from subscriptions.models import Subscriber
from subscriptions.signals import subscriber_confirmed

__all__ = ["embed_papers_task", "classify_papers_task", "classify_topic_task", "classify_missing_task",
           "vectors_store_task"]
log = logging.getLogger(__name__)


def _classify():
    # Imported on first use: digest.apps.ready imports this module for its receivers, and
    # digest.services.classify brings numpy, scipy and bm25s (~130k objects, ~25 MB) into
    # every web process, which never embeds or classifies. Workers preload it (digest/celery.py).
    from digest.services import classify

    return classify


@shared_task(name="digest.tasks.embed_papers_task")
def embed_papers_task(paper_ids: list[int]) -> int:
    return _classify().papers_embed(paper_ids=paper_ids)


@shared_task(name="digest.tasks.classify_papers_task")
def classify_papers_task(paper_ids: list[int]) -> int:
    return _classify().papers_classify(paper_ids=paper_ids)


@shared_task(name="digest.tasks.classify_topic_task")
def classify_topic_task(topic_id: int) -> int:
    return _classify().topic_reclassify(topic_id=topic_id)


@shared_task(name="digest.tasks.classify_missing_task")
def classify_missing_task() -> list[int]:
    return list(_classify().papers_classify_missing())


@shared_task(name="digest.tasks.vectors_store_task")
def vectors_store_task(subscriber_ids: list[int] | None = None, paper_ids: list[int] | None = None) -> int:
    return _classify().vectors_store(subscriber_ids=subscriber_ids or [], paper_ids=paper_ids or [])


def _enqueue(signature, what: str) -> None:
    # An import must not fail because Redis is down: the beat safety net
    # (classify_missing_task / `manage.py classify_papers`) catches up later.
    try:
        signature.delay()
    except Exception as exc:  # kombu raises OperationalError, redis-py its own ConnectionError
        log.warning("could not enqueue %s (%s); classify_papers will catch up", what, exc)


@receiver(papers_changed, dispatch_uid="matching-papers-changed")
def on_papers_changed(sender, paper_ids=(), **kwargs):
    ids = sorted(set(paper_ids or ()))
    if ids:
        # Embed first: the classifier uses the stored vectors.
        _enqueue(chain(embed_papers_task.si(ids), classify_papers_task.si(ids)), f"classification of {len(ids)} papers")


_MATCHED_FIELDS = ("name", "description", "query", "active")


@receiver(pre_save, sender=Topic, dispatch_uid="matching-topic-pre-save")
def _remember_topic(sender, instance, **kwargs):
    old = Topic.objects.filter(pk=instance.pk).values(*_MATCHED_FIELDS).first() if instance.pk else None
    instance._matching_old = old


@receiver(post_save, sender=Topic, dispatch_uid="matching-topic-saved")
def on_topic_saved(sender, instance, created, raw=False, **kwargs):
    if raw:  # loaddata
        return
    old = getattr(instance, "_matching_old", None)
    changed = created or old is None or any(old[f] != getattr(instance, f) for f in _MATCHED_FIELDS)
    if changed and instance.active:
        topic_id = instance.pk
        transaction.on_commit(lambda: _enqueue(classify_topic_task.si(topic_id), f"re-classification of topic {topic_id}"))


@receiver(subscriber_confirmed, dispatch_uid="matching-subscriber-confirmed")
def on_subscriber_confirmed(sender, subscriber, **kwargs):
    on_subscriber_saved(sender, subscriber, created=False)


@receiver(post_save, sender=Subscriber, dispatch_uid="matching-subscriber-saved")
def on_subscriber_saved(sender, instance, created, raw=False, update_fields=None, **kwargs):
    # Confirmed readers' phrases get their vectors long before their send hour; planning
    # stores any still missing (bulk imports and queryset updates send no signal).
    if raw or instance.status != Subscriber.Status.CONFIRMED or not (instance.interests or "").strip():
        return
    if update_fields is not None and not {"interests", "status"} & set(update_fields):
        return
    # No vectors_wanted() check here: it imports the matching stack (numpy, scipy), which web
    # processes never load; the task is a no-op where ranking uses no embeddings.
    subscriber_id = instance.pk
    transaction.on_commit(
        lambda: _enqueue(vectors_store_task.si(subscriber_ids=[subscriber_id]), f"phrase vectors of subscriber {subscriber_id}")
    )
