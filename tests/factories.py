"""factory-boy factories shared by every test area."""

import datetime

import factory
from django.utils import timezone

from digest.models import Paper, Topic, TrendingEntry
from subscriptions.models import Subscriber


class PaperFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Paper

    arxiv_id = factory.Sequence(lambda n: f"2401.{n:05d}")
    title = factory.Sequence(lambda n: f"A study of thing number {n}")
    abstract = factory.Faker("paragraph", nb_sentences=6)
    authors = factory.LazyFunction(lambda: ["Ada Lovelace", "Alan Turing"])
    published_on = factory.LazyFunction(lambda: datetime.date(2024, 1, 15))
    page_url = factory.LazyAttribute(lambda o: f"https://huggingface.co/papers/{o.arxiv_id}")
    abs_url = factory.LazyAttribute(lambda o: f"https://arxiv.org/abs/{o.arxiv_id}")
    pdf_url = factory.LazyAttribute(lambda o: f"https://arxiv.org/pdf/{o.arxiv_id}")


class TrendingEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrendingEntry

    paper = factory.SubFactory(PaperFactory)
    date = factory.LazyFunction(lambda: timezone.localdate())
    rank = factory.Sequence(lambda n: n + 1)
    source = TrendingEntry.Source.HF
    upvotes = 10


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Topic
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Topic {n}")
    slug = factory.Sequence(lambda n: f"topic-{n}")
    description = ""
    query = ""


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    email = factory.Sequence(lambda n: f"reader{n}@example.org")
    status = Subscriber.Status.CONFIRMED
    interests = ""
    timezone = "UTC"
    send_hour = 7
    digest_size = 10
    signup_source = "test"
