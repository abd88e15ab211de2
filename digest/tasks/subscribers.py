"""Tasks: subscriber emails, applying recorded signups, the purge of unconfirmed signups. Thin adapters over subscriptions.services."""

import smtplib
import socket

from celery import shared_task

from subscriptions import services
from subscriptions.models import Subscriber

__all__ = [
    "subscriber_send_confirmation_task",
    "subscriber_send_manage_link_task",
    "subscribers_purge_unconfirmed_task",
    "signup_requests_drain_task",
    "subscriber_link_request_task",
    "confirmations_requeue_lost_task",
]

# Worth another try later: the server or the network hiccuped. A refused recipient or
# a rejected message is permanent and is not retried.
TRANSIENT_MAIL_ERRORS = (
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
    ConnectionError,
    socket.timeout,
    TimeoutError,
)
_RETRY = {"autoretry_for": TRANSIENT_MAIL_ERRORS, "retry_backoff": 30, "retry_backoff_max": 900, "max_retries": 6}


@shared_task(name="digest.tasks.subscriber_send_confirmation_task", **_RETRY)
def subscriber_send_confirmation_task(subscriber_id: int) -> bool:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return False
    return services.subscriber_send_confirmation(subscriber=subscriber)


@shared_task(name="digest.tasks.subscriber_send_manage_link_task", **_RETRY)
def subscriber_send_manage_link_task(subscriber_id: int, links_replaced: bool = False) -> bool:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return False
    return services.subscriber_send_manage_link(subscriber=subscriber, links_replaced=links_replaced)


@shared_task(name="digest.tasks.subscribers_purge_unconfirmed_task")
def subscribers_purge_unconfirmed_task() -> int:
    return services.subscribers_purge_unconfirmed()


@shared_task(name="digest.tasks.signup_requests_drain_task")
def signup_requests_drain_task() -> int:
    return services.signup_requests_process()


@shared_task(name="digest.tasks.subscriber_link_request_task")
def subscriber_link_request_task(subscriber_id: int | None) -> None:
    services.subscriber_link_request_apply(subscriber_id=subscriber_id)


@shared_task(name="digest.tasks.confirmations_requeue_lost_task")
def confirmations_requeue_lost_task() -> int:
    return services.confirmations_requeue_lost()
