"""The manage page by signed link: every preference, pause, fresh links; never another subscriber's data."""

import datetime
import re

import pytest
import time_machine

from subscriptions.links import manage_url
from subscriptions.models import Subscriber
from digest.models import Topic
from tests.factories import SubscriberFactory, TopicFactory

pytestmark = pytest.mark.django_db



@pytest.fixture
def topics():
    Topic.objects.all().delete()  # the test owns its topic list, not the default-topics migration
    return [TopicFactory(name="Robotics", slug="robotics"), TopicFactory(name="Speech", slug="speech"),
            TopicFactory(name="Graphs", slug="graphs")]


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _prefs(**overrides):
    data = {"topics": ["speech", "graphs"], "interests": "speech synthesis", "frequency": "weekly", "weekday": "2",
            "send_hour": "18", "timezone": "Asia/Tokyo", "digest_size": "25"}
    data.update(overrides)
    return data


def test_the_manage_page_shows_the_current_preferences(client, topics):
    subscriber = SubscriberFactory(interests="robot arms", timezone="America/Chicago", digest_size=17)
    subscriber.topics.set([topics[0]])
    response = client.get(_path(manage_url(subscriber)))
    assert response.status_code == 200
    html = response.content.decode()
    assert subscriber.email in html
    assert re.search(r'value="robotics"[^>]*checked|checked[^>]*value="robotics"', html)
    assert 'value="robot arms"' in html
    assert '<option value="America/Chicago" selected>' in html
    # A zone stored under an alias the menu does not list stays the selected one.
    subscriber.timezone = "Asia/Calcutta"
    subscriber.save()
    html = client.get(_path(manage_url(subscriber))).content.decode()
    assert re.search(r'<option value="Asia/Calcutta" selected>Asia/Calcutta \(UTC\+05:30\)</option>', html)
    assert 'value="17"' in html
    assert "data-timezone-autodetect" not in html  # a saved choice is never overwritten by the script


def test_every_preference_can_be_changed(client, topics):
    subscriber = SubscriberFactory()
    subscriber.topics.set([topics[0]])
    url = _path(manage_url(subscriber))
    response = client.post(url, _prefs())
    assert response.status_code == 302 and response["Location"] == url + "?saved=1"
    subscriber.refresh_from_db()
    assert sorted(t.slug for t in subscriber.topics.all()) == ["graphs", "speech"]
    assert (subscriber.interests, subscriber.frequency, subscriber.weekday) == ("speech synthesis", "weekly", 2)
    assert (subscriber.send_hour, subscriber.timezone, subscriber.digest_size) == (18, "Asia/Tokyo", 25)
    assert "Saved" in client.get(response["Location"]).content.decode()


def test_a_bad_value_changes_nothing_and_says_why(client, topics):
    subscriber = SubscriberFactory(digest_size=10)
    response = client.post(_path(manage_url(subscriber)), _prefs(digest_size="99", interests="ok\r\nBcc: x@y.z"))
    assert response.status_code == 400
    assert {"digest_size", "interests"} <= set(response.context["form"].errors)
    subscriber.refresh_from_db()
    assert subscriber.digest_size == 10 and subscriber.interests == ""


@pytest.mark.parametrize("interests", ["", ",,,,", "\u200b, ;"])
def test_preferences_with_no_topic_and_no_interests_are_refused(client, topics, interests):
    subscriber = SubscriberFactory(interests="robot arms")
    subscriber.topics.set([topics[0]])
    response = client.post(_path(manage_url(subscriber)), _prefs(topics=[], interests=interests))
    assert response.status_code == 400
    assert response.context["form"].errors["topics"] == ["Pick at least one topic, or describe your interests below."]
    subscriber.refresh_from_db()
    assert subscriber.interests == "robot arms" and [t.slug for t in subscriber.topics.all()] == ["robotics"]


def test_one_subscribers_link_never_reads_or_changes_another(client, topics):
    alice = SubscriberFactory(email="alice@example.org")
    bob = SubscriberFactory(email="bob@example.org", digest_size=8, interests="bob's things")
    alice_url = _path(manage_url(alice))

    page = client.get(alice_url)
    assert "alice@example.org" in page.content.decode() and "bob@example.org" not in page.content.decode()

    client.post(alice_url, _prefs(email="bob@example.org", subscriber=str(bob.pk), id=str(bob.pk)))
    client.post(alice_url.rstrip("/") + "/pause/", {"weeks": "4", "subscriber": str(bob.pk)})
    bob.refresh_from_db()
    alice.refresh_from_db()
    assert (bob.digest_size, bob.interests, bob.paused_until) == (8, "bob's things", None)
    assert alice.digest_size == 25 and alice.paused_until is not None


def test_pausing_for_n_weeks_and_resuming(client):
    subscriber = SubscriberFactory(timezone="Pacific/Auckland")
    url = _path(manage_url(subscriber))
    with time_machine.travel(datetime.datetime(2026, 6, 1, 13, 0, tzinfo=datetime.UTC), tick=False):
        response = client.post(url + "pause/", {"weeks": "2"})
    assert response.status_code == 302
    subscriber.refresh_from_db()
    # 13:00 UTC is already 2 June in Auckland: the pause counts from the subscriber's own date.
    assert subscriber.paused_until == datetime.date(2026, 6, 16)
    assert "Paused until" in client.get(response["Location"]).content.decode()

    client.post(url + "pause/", {"resume": "1"})
    subscriber.refresh_from_db()
    assert subscriber.paused_until is None


def test_an_odd_pause_length_is_ignored(client):
    subscriber = SubscriberFactory()
    url = _path(manage_url(subscriber))
    for weeks in ["0", "-3", "1000", "two", "2\r\n"]:
        assert client.post(url + "pause/", {"weeks": weeks}).status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.paused_until is None


def test_replacing_links_revokes_the_old_ones_and_mails_a_new_one(
    client, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    subscriber = SubscriberFactory()
    old = _path(manage_url(subscriber))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(old + "new-link/")
    assert response.status_code == 200
    assert client.get(old).status_code == 410
    [message] = smtp_sink.to(subscriber.email)
    new = re.search(r"https?://\S+/manage/[^\s/]+/", message.part("text/plain")).group(0)
    assert client.get(_path(new)).status_code == 200


def test_the_email_after_replacing_links_says_the_old_ones_no_longer_work(
    client, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    from subscriptions import services

    subscriber = SubscriberFactory()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_path(manage_url(subscriber)) + "new-link/")
    [message] = smtp_sink.to(subscriber.email)
    text, html = message.part("text/plain"), message.part("text/html")
    assert "new" in message.subject.lower()
    for body in (text, html):
        assert "old links no longer work" in body
        assert "nothing has changed" not in body.lower()

    # An ordinary request for a link (signing up again, say) still says nothing changed.
    other = SubscriberFactory()
    assert services.subscriber_send_manage_link(subscriber=other)
    [ordinary] = smtp_sink.to(other.email)
    assert "nothing has changed" in ordinary.part("text/plain") and "no longer work" not in ordinary.part("text/plain")


def test_an_unsubscribed_subscribers_page_offers_a_fresh_signup_and_changes_nothing(client, topics):
    subscriber = SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED, digest_size=10)
    url = _path(manage_url(subscriber))
    page = client.get(url)
    assert page.status_code == 200 and "unsubscribed" in page.content.decode()
    client.post(url, _prefs())
    subscriber.refresh_from_db()
    assert subscriber.digest_size == 10 and subscriber.status == Subscriber.Status.UNSUBSCRIBED


@pytest.mark.parametrize("status", [Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.SUPPRESSED,
                                    Subscriber.Status.PENDING])
def test_the_welcome_banner_shows_only_to_a_confirmed_reader(client, topics, status):
    """Reloading the post-confirm URL after unsubscribing must not say "You're in" above "You're unsubscribed"."""
    confirmed = SubscriberFactory(status=Subscriber.Status.CONFIRMED)
    assert "You're in." in client.get(_path(manage_url(confirmed)) + "?welcome=1").content.decode()
    gone = SubscriberFactory(status=status)
    page = client.get(_path(manage_url(gone)) + "?welcome=1").content.decode()
    assert "You're in." not in page and "first digest" not in page


def test_a_fresh_link_request_does_the_same_queries_and_queues_the_same_task_for_any_address(
    client, django_capture_on_commit_callbacks, monkeypatch
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from digest.tasks.subscribers import subscriber_link_request_task
    from subscriptions.models import Suppression

    SubscriberFactory(email="known@example.org")
    SubscriberFactory(email="waiting@example.org", status=Subscriber.Status.PENDING)
    SubscriberFactory(email="bounced@example.org", status=Subscriber.Status.SUPPRESSED)
    Suppression.objects.create(email="bounced@example.org", reason="hard bounce")
    queued = []
    monkeypatch.setattr(subscriber_link_request_task, "delay", lambda subscriber_id: queued.append(subscriber_id))
    seen = []
    for email in ["known@example.org", "waiting@example.org", "bounced@example.org", "nobody@example.org"]:
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
            response = client.post("/link/", {"email": email})
        statements = tuple(re.sub(r"'[^']*'", "?", q["sql"]) for q in queries.captured_queries)
        seen.append((response.status_code, response["Location"], response.content, statements))
    assert len(set(seen)) == 1 and len(seen[0][3]) == 1
    assert len(queued) == 4 and queued[-1] is None


def test_running_the_fresh_link_task_twice_sends_one_email(smtp_sink, eager_tasks, django_capture_on_commit_callbacks):
    from digest.tasks.subscribers import subscriber_link_request_task

    confirmed = SubscriberFactory(email="known@example.org")
    pending = SubscriberFactory(email="waiting@example.org", status=Subscriber.Status.PENDING)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            subscriber_link_request_task(confirmed.pk)
            subscriber_link_request_task(pending.pk)
            subscriber_link_request_task(None)
    assert len(smtp_sink.to("known@example.org")) == 1 and len(smtp_sink.to("waiting@example.org")) == 1


def test_a_fresh_link_request_says_the_same_thing_for_any_address(
    client, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    SubscriberFactory(email="known@example.org")
    SubscriberFactory(email="left@example.org", status=Subscriber.Status.UNSUBSCRIBED)
    answers = []
    for email in ["known@example.org", "KNOWN@example.org ", "nobody@example.org", "left@example.org"]:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/link/", {"email": email})
        answers.append((response.status_code, response["Location"], client.get(response["Location"]).content))
    assert len(set(answers)) == 1
    assert len(smtp_sink.to("known@example.org")) == 1  # sent once; the repeat within the hour is not re-mailed
    assert smtp_sink.to("nobody@example.org") == [] and smtp_sink.to("left@example.org") == []


# --- topics the editors deactivated -------------------------------------------


def _pause_topic(topic):
    topic.active = False
    topic.save()


def test_a_paused_topic_is_kept_when_the_reader_saves_and_the_page_names_it(client, topics):
    robotics, speech, _ = topics
    subscriber = SubscriberFactory()
    subscriber.topics.set([robotics, speech])
    _pause_topic(robotics)
    url = _path(manage_url(subscriber))
    html = client.get(url).content.decode()
    assert 'name="topics" value="robotics"' not in html  # not offered any more
    assert "<strong>Robotics</strong> is paused by the editors: you keep it" in html

    response = client.post(url, _prefs(topics=["speech"], send_hour="9"))  # only the hour changes
    assert response.status_code == 302
    assert sorted(t.slug for t in subscriber.topics.all()) == ["robotics", "speech"]


def test_a_reader_whose_only_topic_is_paused_can_save_without_picking_another(client, topics):
    robotics = topics[0]
    subscriber = SubscriberFactory(interests="")
    subscriber.topics.set([robotics])
    _pause_topic(robotics)
    response = client.post(_path(manage_url(subscriber)), _prefs(topics=[], interests="", send_hour="9"))
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.send_hour == 9 and [t.slug for t in subscriber.topics.all()] == ["robotics"]


def test_two_paused_topics_are_named_together(client, topics):
    robotics, _, graphs = topics
    subscriber = SubscriberFactory(interests="graph neural networks")
    subscriber.topics.set([robotics, graphs])
    _pause_topic(robotics)
    _pause_topic(graphs)
    html = client.get(_path(manage_url(subscriber))).content.decode()
    assert "<strong>Graphs</strong> and <strong>Robotics</strong> are paused by the editors: you keep them" in html


def test_a_reader_can_stop_following_a_paused_topic_they_hold_and_keeps_it_by_default(client, topics):
    robotics, speech, graphs = topics
    subscriber = SubscriberFactory()
    subscriber.topics.set([robotics, graphs, speech])
    _pause_topic(robotics)
    _pause_topic(graphs)
    url = _path(manage_url(subscriber))
    html = client.get(url).content.decode()
    boxes = re.findall(r'<input type="checkbox" name="remove_paused"[^>]*>', html)
    assert [re.search(r'value="(\w+)"', b).group(1) for b in boxes] == ["graphs", "robotics"]
    assert not any("checked" in b for b in boxes)  # kept unless the reader ticks one
    assert "Stop following Robotics" in html

    response = client.post(url, _prefs(topics=["speech"], remove_paused=["robotics"]))
    assert response.status_code == 302
    assert sorted(t.slug for t in subscriber.topics.all()) == ["graphs", "speech"]


def test_a_paused_topic_the_reader_does_not_hold_cannot_be_added_either_way(client, topics):
    robotics, speech, _ = topics
    subscriber = SubscriberFactory()
    subscriber.topics.set([speech])
    _pause_topic(robotics)
    url = _path(manage_url(subscriber))
    assert 'name="remove_paused"' not in client.get(url).content.decode()  # nothing paused to remove
    for data in (_prefs(topics=["speech", "robotics"]), _prefs(topics=["speech"], remove_paused=["robotics"])):
        response = client.post(url, data)
        assert response.status_code == 400
        assert {"topics", "remove_paused"} & set(response.context["form"].errors)
    assert [t.slug for t in subscriber.topics.all()] == ["speech"]


def test_removing_the_only_topic_left_asks_for_another_or_for_interests(client, topics):
    robotics = topics[0]
    subscriber = SubscriberFactory(interests="")
    subscriber.topics.set([robotics])
    _pause_topic(robotics)
    url = _path(manage_url(subscriber))
    response = client.post(url, _prefs(topics=[], interests="", remove_paused=["robotics"]))
    assert response.status_code == 400 and "topics" in response.context["form"].errors
    assert [t.slug for t in subscriber.topics.all()] == ["robotics"]
    response = client.post(url, _prefs(topics=[], interests="robot arms", remove_paused=["robotics"]))
    assert response.status_code == 302 and not subscriber.topics.exists()


# --- a form shown again with errors: the summary, the links, the attributes --------------


def _error_summary(html: str) -> str:
    match = re.search(r'<div class="error-summary"[^>]*>.*?</ul>', html, re.S)
    assert match, "no error summary"
    return match.group(0)


def test_a_refused_save_is_summed_up_at_the_top_of_the_form_with_a_link_to_each_field(client, topics):
    subscriber = SubscriberFactory()
    response = client.post(_path(manage_url(subscriber)), _prefs(digest_size="99", interests="ok\r\nBcc: x@y.z"))
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r"<title>Error: Your subscription", html)
    summary = _error_summary(html)
    assert 'tabindex="-1" autofocus data-error-summary' in summary and "There is a problem" in summary
    assert re.findall(r'<a href="([^"]+)">', summary) == ["#id_interests", "#id_digest_size"]  # the page's order
    assert html.index('id="manage-form"') < html.index("There is a problem") < html.index('name="topics"')
    size = re.search(r'<input type="number" name="digest_size"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in size and 'aria-describedby="id_digest_size_helptext id_digest_size_error"' in size
    assert "There is a problem" not in client.get(_path(manage_url(subscriber))).content.decode()


@pytest.mark.parametrize("field", ["topics", "frequency", "weekday", "send_hour", "timezone"])
def test_a_value_not_offered_is_refused_without_repeating_it(client, topics, field):
    bogus = "Zq-bogus-answer"
    response = client.post(_path(manage_url(SubscriberFactory())), _prefs(**{field: [bogus] if field == "topics" else bogus}))
    assert response.status_code == 400
    assert response.context["form"].errors[field] == ["Choose one of the listed options."]
    assert bogus not in response.content.decode()


def test_a_stop_following_error_is_tied_to_its_boxes_and_linked_from_the_summary(client, topics):
    robotics, speech, _ = topics
    subscriber = SubscriberFactory()
    subscriber.topics.set([robotics, speech])
    _pause_topic(robotics)
    url = _path(manage_url(subscriber))
    assert 'class="chip chip--remove"' in client.get(url).content.decode()  # styled apart from followed topics
    response = client.post(url, _prefs(topics=["speech"], remove_paused=["Zq-bogus-topic"]))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Zq-bogus-topic" not in html
    assert re.search(r'role="group" aria-labelledby="topics_paused" aria-describedby="id_remove_paused_error"', html)
    assert '<p class="error" id="id_remove_paused_error">Choose one of the listed options.</p>' in html
    assert re.findall(r'<a href="([^"]+)">', _error_summary(html)) == ["#id_remove_paused_0"]
    box = re.search(r'<input type="checkbox" name="remove_paused"[^>]*>', html).group(0)
    assert 'id="id_remove_paused_0"' in box and 'aria-invalid="true"' in box


def test_a_refused_fresh_link_request_is_a_400_with_the_summary(client):
    response = client.post("/link/", {"email": "not-an-address"})
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r"<title>Error: Get a fresh link", html)
    assert re.findall(r'<a href="([^"]+)">', _error_summary(html)) == ["#id_email"]
    email = re.search(r'<input type="email"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in email and 'aria-describedby="id_email_error"' in email
    assert "js/subscribe" in html  # the script that focuses the summary
    page = client.get("/link/").content.decode()
    assert "There is a problem" not in page and "<title>Error:" not in page


# --- a time zone stored before zones were checked --------------------------------------


def test_a_bad_stored_time_zone_shows_the_default_and_pausing_counts_in_it(client, settings):
    settings.TIME_ZONE_DEFAULT = "UTC"
    subscriber = SubscriberFactory()
    Subscriber.objects.filter(pk=subscriber.pk).update(timezone="Mars/Olympus")  # as an old admin save left it
    url = _path(manage_url(subscriber))
    html = client.get(url).content.decode()
    assert '<option value="UTC" selected>' in html  # the zone planning uses for it, not the menu's first
    with time_machine.travel(datetime.datetime(2026, 6, 1, 23, 0, tzinfo=datetime.UTC), tick=False):
        response = client.post(url + "pause/", {"weeks": "1"})
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.paused_until == datetime.date(2026, 6, 8)
