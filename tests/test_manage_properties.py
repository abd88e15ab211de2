"""Property-based: whatever is posted to the manage page, a form error or a saved change, never a 500."""

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from subscriptions.links import manage_url
from digest.models import Topic
from tests.factories import SubscriberFactory, TopicFactory
from tests.test_signup_properties import field_value

pytestmark = pytest.mark.django_db

FIELDS = ["topics", "interests", "frequency", "weekday", "send_hour", "timezone", "digest_size"]
VALID = {"topics": ["robotics"], "interests": "graphs", "frequency": "weekly", "weekday": "3", "send_hour": "6",
         "timezone": "Asia/Kolkata", "digest_size": "20"}


@st.composite
def submissions(draw):
    data = dict(VALID)
    for name in draw(st.sets(st.sampled_from(FIELDS))):
        data[name] = draw(st.lists(field_value, min_size=1, max_size=3)) if name == "topics" else draw(field_value)
    # Fields the form does not have must change nothing, whatever they hold.
    data.update(draw(st.dictionaries(st.sampled_from(["email", "status", "subscriber", "token_key"]), field_value)))
    return data


@pytest.fixture
def subscriber():
    Topic.objects.all().delete()  # the test owns its topic list, not the default-topics migration
    TopicFactory(name="Robotics", slug="robotics")
    return SubscriberFactory(email="fixed@example.org", digest_size=10)


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=submissions())
def test_any_manage_submission_is_an_error_or_a_saved_change_never_a_500(client, subscriber, data):
    before = (subscriber.__class__.objects.values_list("digest_size", "interests", "timezone").get(pk=subscriber.pk))
    url = "/" + manage_url(subscriber).split("://", 1)[1].split("/", 1)[1]
    response = client.post(url, data)
    assert response.status_code in (302, 400)
    subscriber.refresh_from_db()
    assert subscriber.email == "fixed@example.org" and subscriber.status == "confirmed"
    if response.status_code == 302:
        assert subscriber.digest_size == int(data["digest_size"])
        assert "\r" not in subscriber.interests and "\n" not in subscriber.interests
    else:
        assert response.context["form"].errors
        assert (subscriber.digest_size, subscriber.interests, subscriber.timezone) == before


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    topics=st.lists(st.sampled_from(["robotics", "speech", "graphs", "nope"]) | field_value, max_size=4),
    remove=st.lists(st.sampled_from(["robotics", "speech", "graphs", "nope"]) | field_value, max_size=4),
)
def test_a_paused_topic_is_only_ever_kept_or_removed_never_added(client, subscriber, topics, remove):
    """Speech is paused and held, Graphs paused and not held: whatever is posted, Graphs stays out."""
    speech = TopicFactory(name="Speech", slug="speech", active=False)  # get_or_create: once per test
    TopicFactory(name="Graphs", slug="graphs", active=False)
    subscriber.topics.set([speech])
    url = "/" + manage_url(subscriber).split("://", 1)[1].split("/", 1)[1]
    response = client.post(url, {**VALID, "topics": topics, "remove_paused": remove})
    assert response.status_code in (302, 400)
    held = {t.slug for t in subscriber.topics.all()}
    assert "graphs" not in held and held <= {"robotics", "speech"}
    if response.status_code == 302:
        assert ("speech" in held) == ("speech" not in remove)
    else:
        assert held == {"speech"}
