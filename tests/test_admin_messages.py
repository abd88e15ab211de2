"""What the admin's actions say: one paper is "1 paper", two are "2 papers", never "paper(s)"."""

import datetime

import pytest
from django.urls import reverse

from digest.models import Delivery, Edition
from subscriptions.models import Subscriber
from tests.admin_support import curator, curator_client, operator, operator_client  # noqa: F401
from tests.factories import PaperFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 11, 20)


def _message(client, changelist: str, action: str, ids) -> str:
    response = client.post(
        reverse(f"admin:{changelist}_changelist"),
        {"action": action, "_selected_action": [str(i) for i in ids]},
        follow=True,
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert "(s)" not in message
    return message


@pytest.mark.parametrize(
    "action, prepare, one, two",
    [
        ("pin", {}, "1 paper pinned; it goes first", "2 papers pinned; they go first"),
        ("unpin", {"pinned": True}, "Unpinned 1 paper.", "Unpinned 2 papers."),
        ("hide", {}, "Hid 1 paper; no future digest will include it.", "Hid 2 papers; no future digest will include them."),
        ("unhide", {"hidden": True}, "1 paper can appear in digests again.", "2 papers can appear in digests again."),
        ("reclassify", {}, "Queued re-classification of 1 paper;", "Queued re-classification of 2 papers;"),
    ],
)
def test_paper_actions_count_one_paper_and_two_papers(curator_client, action, prepare, one, two):
    papers = PaperFactory.create_batch(3, **prepare)
    assert one in _message(curator_client, "digest_paper", action, [papers[0].pk])
    assert two in _message(curator_client, "digest_paper", action, [p.pk for p in papers[1:]])


def test_pinning_papers_already_pinned_says_which_were_in_the_singular_and_the_plural(curator_client):
    pinned = PaperFactory.create_batch(2, pinned=True)
    new = PaperFactory()
    assert "1 paper pinned (it already was);" in _message(curator_client, "digest_paper", "pin", [pinned[0].pk])
    message = _message(curator_client, "digest_paper", "pin", [new.pk, pinned[1].pk])
    assert "2 papers pinned (1 of them already was);" in message
    assert "2 papers pinned (2 of them already were);" in _message(curator_client, "digest_paper", "pin", [p.pk for p in pinned])


@pytest.mark.parametrize("count, words", [(1, "Released 1 edition; it goes out"), (2, "Released 2 editions; they go out")])
def test_releasing_held_editions_counts_them(operator_client, count, words):
    held = [Edition.objects.create(date=DAY + datetime.timedelta(days=n), status=Edition.Status.HELD) for n in range(count)]
    assert words in _message(operator_client, "digest_edition", "release", [e.pk for e in held])


@pytest.mark.parametrize(
    "retryable, refused, words",
    [
        (1, 0, "Re-queued 1 delivery."),
        (2, 0, "Re-queued 2 deliveries."),
        (1, 1, "Re-queued 1 delivery (1 selected could not be re-queued and was left alone)."),
        (1, 2, "Re-queued 1 delivery (2 selected could not be re-queued and were left alone)."),
    ],
)
def test_requeueing_deliveries_counts_them_and_the_ones_left_alone(operator_client, retryable, refused, words):
    edition = Edition.objects.create(date=DAY)

    def failed(transient: bool):
        return Delivery.objects.create(edition=edition, subscriber=SubscriberFactory(), state=Delivery.State.FAILED,
                                       transient_error=transient, last_error="451 try later")  # fmt: skip

    ids = [failed(True).pk for _ in range(retryable)] + [failed(False).pk for _ in range(refused)]
    assert _message(operator_client, "digest_delivery", "requeue", ids) == words


@pytest.mark.parametrize("count, words", [(1, "Suppressed 1 subscriber;"), (2, "Suppressed 2 subscribers;")])
def test_suppressing_subscribers_counts_them(operator_client, count, words):
    ids = [s.pk for s in SubscriberFactory.create_batch(count)]
    assert words in _message(operator_client, "subscriptions_subscriber", "suppress", ids)


@pytest.mark.parametrize("count, words", [(1, "Queued 1 confirmation email."), (2, "Queued 2 confirmation emails.")])
def test_resending_confirmations_counts_the_emails(operator_client, count, words):
    ids = [s.pk for s in SubscriberFactory.create_batch(count, status=Subscriber.Status.PENDING)]
    assert words in _message(operator_client, "subscriptions_subscriber", "resend_confirmation", ids)


def test_merging_one_duplicate_counts_what_it_kept_in_the_singular(curator_client):
    from tests.factories import TrendingEntryFactory

    keep = PaperFactory(title="Sparse cats", arxiv_id="2411.00007")
    dup = PaperFactory(title="Sparse cats (HF)", arxiv_id=None)
    TrendingEntryFactory(paper=dup, source="hf")
    response = curator_client.post(
        reverse("admin:digest_paper_changelist"),
        {"action": "merge", "_selected_action": [keep.pk, dup.pk], "apply": "1", "keep": str(keep.pk)},
        follow=True,
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("Merged 1 duplicate into “Sparse cats”: 1 trending appearance and 0 sent-paper records kept.")


@pytest.mark.parametrize("readers, words", [(1, "1 reader follows this topic"), (2, "2 readers follow this topic")])
def test_a_followed_topics_delete_page_counts_its_readers(curator_client, readers, words):
    from tests.factories import TopicFactory

    topic = TopicFactory(name="Robotics")
    for s in SubscriberFactory.create_batch(readers, status=Subscriber.Status.CONFIRMED):
        s.topics.add(topic)
    page = " ".join(curator_client.get(reverse("admin:digest_topic_delete", args=[topic.pk])).content.decode().split())
    assert words in page
