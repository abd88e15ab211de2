"""The Celery app. Tasks carry ids only; the database holds the truth."""

import os

from celery import Celery, signals
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digest.settings")

app = Celery("paperboy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Only one beat may run (see README, "Running in production").
app.conf.beat_schedule = {
    # Signups whose drain task was never queued (broker down after the form was recorded).
    "sweep-signup-requests": {
        "task": "digest.tasks.signup_requests_drain_task",
        "schedule": 60.0,
    },
    # Confirmation emails whose queueing failed after the signup had committed.
    "requeue-lost-confirmations": {
        "task": "digest.tasks.confirmations_requeue_lost_task",
        "schedule": 300.0,
    },
    "purge-unconfirmed-subscribers": {
        "task": "digest.tasks.subscribers_purge_unconfirmed_task",
        "schedule": crontab(minute=17, hour=3),
    },
    "fetch-hf-daily-papers": {
        "task": "digest.tasks.fetch_papers_task",
        "schedule": crontab(minute=5, hour="*/3"),
        "kwargs": {"source": "hf"},
    },
    "fetch-arxiv": {
        "task": "digest.tasks.fetch_papers_task",
        "schedule": crontab(minute=35, hour="*/6"),
        "kwargs": {"source": "arxiv"},
    },
    # Subscribers' local send hours fall on the quarter hour at the latest.
    "plan-digests": {
        "task": "digest.tasks.deliveries_plan_task",
        "schedule": crontab(minute="*/15"),
    },
    "reconcile-deliveries": {
        "task": "digest.tasks.deliveries_reconcile_task",
        "schedule": crontab(minute="*/5"),
    },
    # Safety net: papers whose classify/embed task was lost (broker down at import time).
    "classify-missing": {
        "task": "digest.tasks.classify_missing_task",
        "schedule": crontab(minute=50),
    },
}


# Workers load the matching stack (numpy, scipy, bm25s) once, before the pool forks, so the
# children share it; the web process never imports it (see digest/tasks/classify.py).
@signals.worker_init.connect
def _matching_preloaded(**kwargs):
    from digest.services import classify  # noqa: F401


# Database connections live across tasks (CELERY_DB_REUSE_MAX in settings) instead of a
# fresh PostgreSQL backend for every chunk; like Django around a request, each task
# starts and ends by dropping a connection that broke or outlived CONN_MAX_AGE.
@signals.task_prerun.connect
@signals.task_postrun.connect
def _db_connections_checked(task=None, **kwargs):
    from django.db import close_old_connections

    # A task run inline (apply(), eager tests) shares its caller's connection and maybe its
    # open transaction; only a worker's own task may drop it.
    if task is not None and task.request.is_eager:
        return
    close_old_connections()
