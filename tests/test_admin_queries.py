"""List pages with 10,000 rows: a fixed, small number of queries (no N+1), pinned here."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from digest.models import Delivery, Edition, Paper, PaperTopic, Topic, TrendingEntry, title_fingerprint
from subscriptions.models import Subscriber
from tests.admin_support import curator, curator_client, operator, operator_client  # noqa: F401

pytestmark = pytest.mark.django_db

N = 10_000
DAY = datetime.date(2026, 11, 20)


@pytest.fixture
def topics(db):
    return Topic.objects.bulk_create([Topic(name=f"Topic {i}", slug=f"topic-{i}", query=f"word{i}") for i in range(6)])


@pytest.fixture
def many_papers(topics):
    papers = Paper.objects.bulk_create(
        [
            Paper(title=f"Paper number {i}", fingerprint=title_fingerprint(f"Paper number {i}"), abstract="x",
                  arxiv_id=f"2411.{i:05d}", authors=["A. Author"], upvotes=i % 300)  # fmt: skip
            for i in range(N)
        ],
        batch_size=2000,
    )
    TrendingEntry.objects.bulk_create(
        [TrendingEntry(paper=p, date=DAY - datetime.timedelta(days=i % 30), rank=i % 50 + 1, source="hf")
         for i, p in enumerate(papers)],  # fmt: skip
        batch_size=2000,
    )
    PaperTopic.objects.bulk_create(
        [PaperTopic(paper=p, topic=topics[(i + k) % 6], score=0.5 + k / 10) for i, p in enumerate(papers) for k in (0, 1)],
        batch_size=4000,
    )
    return papers


@pytest.fixture
def many_subscribers(topics):
    subscribers = Subscriber.objects.bulk_create(
        [Subscriber(email=f"reader{i}@example.org", status=Subscriber.Status.CONFIRMED, signup_source="test",
                    created_at=timezone.now()) for i in range(N)],  # fmt: skip
        batch_size=2000,
    )
    through = Subscriber.topics.through
    through.objects.bulk_create(
        [through(subscriber=s, topic=topics[(i + k) % 6]) for i, s in enumerate(subscribers) for k in (0, 1)],
        batch_size=4000,
    )
    return subscribers


@pytest.fixture
def many_deliveries(many_subscribers):
    edition = Edition.objects.create(date=DAY, status=Edition.Status.SENDING)
    states = [Delivery.State.SENT, Delivery.State.FAILED, Delivery.State.PENDING]
    Delivery.objects.bulk_create(
        [Delivery(edition=edition, subscriber=s, state=states[i % 3], last_error="451 try later" if i % 3 == 1 else "",
                  transient_error=i % 3 == 1) for i, s in enumerate(many_subscribers)],  # fmt: skip
        batch_size=2000,
    )
    return edition


# The budgets: session + user + permissions, the count, the page, one prefetch
# (topics), the filters' choices. They do not depend on the number of rows.
def test_the_paper_list_of_10000_papers_takes_a_fixed_number_of_queries(
    curator_client, many_papers, django_assert_max_num_queries
):
    url = reverse("admin:digest_paper_changelist")
    with django_assert_max_num_queries(11):
        response = curator_client.get(url)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 50
    with django_assert_max_num_queries(12):
        assert curator_client.get(url, {"q": "number 99", "trending": "7d", "topic": "1"}).status_code == 200


def test_the_subscriber_list_of_10000_takes_a_fixed_number_of_queries(
    operator_client, many_subscribers, django_assert_max_num_queries
):
    with django_assert_max_num_queries(11):
        response = operator_client.get(reverse("admin:subscriptions_subscriber_changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 100


def test_the_delivery_list_of_10000_takes_a_fixed_number_of_queries(
    operator_client, many_deliveries, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        response = operator_client.get(reverse("admin:digest_delivery_changelist"), {"edition__id__exact": many_deliveries.pk})
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 100
    assert dict(response.context["state_counts"]) == {"sent": 3334, "failed": 3333, "pending": 3333}


def test_the_topic_edition_and_health_pages_stay_small_with_10000_subscribers(
    operator_client, many_deliveries, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        assert operator_client.get(reverse("admin:digest_topic_changelist")).status_code == 200
    with django_assert_max_num_queries(10):
        assert operator_client.get(reverse("admin:digest_edition_changelist")).status_code == 200
    with django_assert_max_num_queries(16):
        assert operator_client.get(reverse("admin:digest_sending_health")).status_code == 200
