"""Tasks: embed and classify papers; receivers that enqueue them when papers or topics change."""

import logging

from celery import chain, shared_task
from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from digest.models import Topic
from digest.services import classify
from digest.signals import papers_changed

__all__ = ["embed_papers_task", "classify_papers_task", "classify_topic_task", "classify_missing_task"]
log = logging.getLogger(__name__)


@shared_task(name="digest.tasks.embed_papers_task")
def embed_papers_task(paper_ids: list[int]) -> int:
    return classify.papers_embed(paper_ids=paper_ids)


@shared_task(name="digest.tasks.classify_papers_task")
def classify_papers_task(paper_ids: list[int]) -> int:
    return classify.papers_classify(paper_ids=paper_ids)


@shared_task(name="digest.tasks.classify_topic_task")
def classify_topic_task(topic_id: int) -> int:
    return classify.topic_reclassify(topic_id=topic_id)


@shared_task(name="digest.tasks.classify_missing_task")
def classify_missing_task() -> list[int]:
    return list(classify.papers_classify_missing())


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
