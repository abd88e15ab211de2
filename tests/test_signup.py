"""Signup and double opt-in: the landing page, consent evidence, enumeration, rate limits, header injection."""

import datetime
import re
import threading

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from subscriptions import services
from subscriptions.models import SignupConsent, SignupRequest, Subscriber, Suppression
from digest.models import Topic
from tests.factories import PaperFactory, SubscriberFactory, TopicFactory, TrendingEntryFactory

pytestmark = pytest.mark.django_db



@pytest.fixture
def topics():
    Topic.objects.all().delete()  # the test owns its topic list, not the default-topics migration
    return [
        TopicFactory(name="Robotics", slug="robotics", position=1),
        TopicFactory(name="Computer vision", slug="computer-vision", position=2),
        TopicFactory(name="Retired topic", slug="retired", active=False),
    ]


@pytest.fixture
def addresses_in_every_state():
    """One address per state a signup can meet; new@example.org is the one nobody knows."""
    SubscriberFactory(email="pending@example.org", status=Subscriber.Status.PENDING)
    SubscriberFactory(email="confirmed@example.org", status=Subscriber.Status.CONFIRMED)
    SubscriberFactory(email="left@example.org", status=Subscriber.Status.UNSUBSCRIBED)
    SubscriberFactory(email="bounced@example.org", status=Subscriber.Status.SUPPRESSED)
    Suppression.objects.create(email="bounced@example.org", reason="hard bounce")
    Suppression.objects.create(email="complained@example.org", reason="complaint")
    return ["new@example.org", "pending@example.org", "confirmed@example.org", "left@example.org",
            "bounced@example.org", "complained@example.org"]


def _form(email="Ada@Example.org ", **overrides):
    data = {
        "email": email,
        "topics": ["robotics"],
        "interests": "diffusion models, video generation",
        "frequency": "weekly",
        "weekday": "4",
        "send_hour": "8",
        "timezone": "Europe/Berlin",
        "digest_size": "12",
    }
    data.update(overrides)
    return data


def _post(client, ip="203.0.113.7", **form):
    return client.post(reverse("subscriptions:signup"), _form(**form), REMOTE_ADDR=ip, HTTP_USER_AGENT="Mozilla/5.0 test")


def _signup(client, django_capture_on_commit_callbacks, ip="203.0.113.7", **form):
    """The form's POST, then the worker's part: applying the recorded request."""
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, ip=ip, **form)
    with django_capture_on_commit_callbacks(execute=True):
        services.signup_requests_process()  # a no-op where eager tasks applied it already
    return response


def _link(text: str, kind: str) -> str:
    match = re.search(rf"https?://\S+/{kind}/[^\s/]+/", text)
    assert match, text
    return match.group(0)


def test_the_landing_page_shows_the_form_active_topics_and_the_latest_trending_papers(client, topics):
    today = timezone.localdate()
    fresh = TrendingEntryFactory(paper=PaperFactory(title="Diffusion for robots", upvotes=3), upvotes=42, date=today)
    TrendingEntryFactory(paper=PaperFactory(title="Yesterday's news"), date=today - datetime.timedelta(days=1))
    TrendingEntryFactory(paper=PaperFactory(title="Hidden by a curator", hidden=True), date=today)

    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_email">' in html
    assert "Robotics" in html and "Computer vision" in html
    assert "Retired topic" not in html
    assert fresh.paper.title in html and "42" in html
    assert "Yesterday's news" not in html
    assert "Hidden by a curator" not in html
    assert 'name="timezone"' in html and "data-timezone-autodetect" in html
    assert "<script>" not in html  # CSP allows only external scripts


def test_the_landing_page_works_before_any_papers_or_topics_exist(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "hasn't been fetched yet" in response.content.decode()


def test_signup_creates_a_pending_subscriber_with_preferences_and_consent_evidence(
    client, topics, django_capture_on_commit_callbacks
):
    response = _signup(client, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert response["Location"] == reverse("subscriptions:signup_done")
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "ada@example.org"
    assert subscriber.status == Subscriber.Status.PENDING
    assert [t.slug for t in subscriber.topics.all()] == ["robotics"]
    assert subscriber.interests == "diffusion models, video generation"
    assert (subscriber.frequency, subscriber.weekday, subscriber.send_hour) == ("weekly", 4, 8)
    assert (subscriber.timezone, subscriber.digest_size) == ("Europe/Berlin", 12)
    assert subscriber.signup_ip == "203.0.113.7"
    assert subscriber.signup_user_agent == "Mozilla/5.0 test"
    assert subscriber.signup_source == "web"
    assert subscriber.signup_at is not None
    assert subscriber.confirmed_at is None


def test_signup_mails_a_confirmation_whose_link_confirms_only_on_post(
    client, topics, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    _signup(client, django_capture_on_commit_callbacks)

    [message] = smtp_sink.to("ada@example.org")
    assert "Confirm" in message.subject
    text, html = message.part("text/plain"), message.part("text/html")
    assert "Someone (hopefully you) asked" in text and "Someone (hopefully you) asked" in html
    url = _link(text, "confirm")
    assert url in html
    assert url.startswith("http://127.0.0.1:8000/confirm/") or url.startswith("http")
    path = url.split("://", 1)[1].split("/", 1)[1]

    page = client.get("/" + path, HTTP_USER_AGENT="Link scanner")
    assert page.status_code == 200
    assert "Confirm my subscription" in page.content.decode()
    assert "Weekly, on Friday at 08:00 (Europe/Berlin)" in " ".join(page.content.decode().split())
    assert "no-store" in page["Cache-Control"]  # a page reached by a secret link is never cached
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING

    confirmed = client.post("/" + path, REMOTE_ADDR="198.51.100.9", HTTP_USER_AGENT="Firefox confirm")
    assert confirmed.status_code == 302
    assert confirmed["Location"].startswith("/manage/") and confirmed["Location"].endswith("?welcome=1")
    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.CONFIRMED
    assert subscriber.confirm_ip == "198.51.100.9"
    assert subscriber.confirm_user_agent == "Firefox confirm"
    assert subscriber.confirmed_at is not None
    # A weekly reader is told when the first digest comes: on their day, not within the hour.
    welcome = " ".join(client.get(confirmed["Location"]).content.decode().split())
    assert "Your first digest comes on your chosen day, at your chosen hour." in welcome

    again = client.post("/" + path, REMOTE_ADDR="192.0.2.1", HTTP_USER_AGENT="Second click")
    assert again.status_code == 200 and "You're subscribed" in again.content.decode()
    assert Subscriber.objects.get().confirm_user_agent == "Firefox confirm"  # first evidence kept


@pytest.mark.parametrize(
    "frequency, schedule",
    [("weekly", "Weekly, on Friday, 12 papers, at 08:00 (Europe/Berlin)"), ("daily", "Daily, 12 papers, at 08:00 (Europe/Berlin)")],
)
def test_the_confirmation_email_states_the_schedule_with_a_weekly_readers_day(smtp_sink, frequency, schedule):
    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING, frequency=frequency, weekday=4, send_hour=8,
                                   timezone="Europe/Berlin", digest_size=12)  # fmt: skip
    assert services.confirmation_claim(subscriber_id=subscriber.pk)
    assert services.subscriber_send_confirmation(subscriber=subscriber)
    [message] = smtp_sink.to(subscriber.email)
    assert schedule in " ".join(message.part("text/plain").split())
    assert schedule in " ".join(re.sub(r"<[^>]+>", " ", message.part("text/html")).split())


@pytest.mark.parametrize("source", ["web", "csv-import"])
def test_the_confirmation_email_keeps_its_paragraphs_apart(smtp_sink, source):
    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING, signup_source=source)
    assert services.confirmation_claim(subscriber_id=subscriber.pk)
    assert services.subscriber_send_confirmation(subscriber=subscriber)
    [message] = smtp_sink.to(subscriber.email)
    assert ".\n\nTo confirm, open this link" in message.part("text/plain").replace("\r\n", "\n")


def test_a_pending_address_gets_at_most_one_confirmation_an_hour(
    client, topics, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    with time_machine.travel(datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC), tick=False):
        _signup(client, django_capture_on_commit_callbacks, ip="203.0.113.1")
        _signup(client, django_capture_on_commit_callbacks, ip="203.0.113.2")
    with time_machine.travel(datetime.datetime(2026, 3, 2, 9, 59, tzinfo=datetime.UTC), tick=False):
        _signup(client, django_capture_on_commit_callbacks, ip="203.0.113.3")
    assert len(smtp_sink.to("ada@example.org")) == 1
    with time_machine.travel(datetime.datetime(2026, 3, 2, 10, 1, tzinfo=datetime.UTC), tick=False):
        _signup(client, django_capture_on_commit_callbacks, ip="203.0.113.4")
    assert len(smtp_sink.to("ada@example.org")) == 2


_T0 = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)


def _signup_as(client, django_capture_on_commit_callbacks, *, at, ip, agent):
    """Someone signs ada@example.org up at `at`, from `ip` with browser `agent`."""
    with time_machine.travel(at, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/", _form(), REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)
        with django_capture_on_commit_callbacks(execute=True):
            services.signup_requests_process()
    return response


def _confirm_paths(smtp_sink):
    return [_link(m.part("text/plain"), "confirm").split("://", 1)[1].split("/", 1)[1] for m in smtp_sink.to("ada@example.org")]


def _evidence():
    subscriber = Subscriber.objects.get()
    return subscriber.status, subscriber.signup_at, subscriber.signup_ip, subscriber.signup_user_agent


@pytest.mark.parametrize("used, evidence", [(0, (_T0, "203.0.113.1", "Owner's browser")),
                                            (1, (_T0 + datetime.timedelta(hours=2), "198.51.100.66", "Someone else"))])
def test_confirming_records_the_evidence_of_the_signup_whose_link_was_used_not_of_a_later_one(
    client, topics, smtp_sink, eager_tasks, django_capture_on_commit_callbacks, used, evidence
):
    first = _signup_as(client, django_capture_on_commit_callbacks, at=_T0, ip="203.0.113.1", agent="Owner's browser")
    again = _signup_as(client, django_capture_on_commit_callbacks, at=_T0 + datetime.timedelta(hours=2),
                       ip="198.51.100.66", agent="Someone else")
    assert (first.status_code, first["Location"]) == (again.status_code, again["Location"])  # nothing told
    paths = _confirm_paths(smtp_sink)
    assert len(paths) == 2
    assert _evidence()[1:] == (_T0, "203.0.113.1", "Owner's browser")  # unconfirmed: the first signup's

    with time_machine.travel(_T0 + datetime.timedelta(hours=3)):
        assert client.post("/" + paths[used], REMOTE_ADDR="192.0.2.5").status_code == 302
        assert _evidence() == ("confirmed", *evidence)
        assert not SignupConsent.objects.exists()  # the evidence is the subscriber's now
        client.post("/" + paths[1 - used], REMOTE_ADDR="192.0.2.6")  # the other link changes nothing now
        assert _evidence() == ("confirmed", *evidence)


def test_a_signup_within_the_hour_sends_nothing_and_leaves_the_evidence_of_the_link_sent(
    client, topics, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    _signup_as(client, django_capture_on_commit_callbacks, at=_T0, ip="203.0.113.1", agent="Owner's browser")
    _signup_as(client, django_capture_on_commit_callbacks, at=_T0 + datetime.timedelta(minutes=10),
               ip="198.51.100.66", agent="Someone else")
    [path] = _confirm_paths(smtp_sink)
    with time_machine.travel(_T0 + datetime.timedelta(hours=3)):
        assert client.post("/" + path).status_code == 302
    assert _evidence() == ("confirmed", _T0, "203.0.113.1", "Owner's browser")


def test_a_link_to_a_signup_no_longer_kept_is_expired_while_the_address_waits(client):
    from subscriptions.tokens import Purpose, token_make

    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING)
    response = client.post("/confirm/" + token_make(subscriber=subscriber, purpose=Purpose.CONFIRM, consent_id=12345) + "/")
    assert response.status_code == 410
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING


def test_a_later_signup_keeps_the_address_waiting_and_its_evidence_goes_once_no_link_can_use_it():
    now = timezone.now()
    again = SubscriberFactory(status=Subscriber.Status.PENDING, signup_at=now - datetime.timedelta(days=8))
    SignupConsent.objects.create(subscriber=again, signup_at=now - datetime.timedelta(days=2))
    old = SignupConsent.objects.create(subscriber=again, signup_at=now - datetime.timedelta(days=9))
    left = SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED)
    SignupConsent.objects.create(subscriber=left, signup_at=now)
    forgotten = SubscriberFactory(status=Subscriber.Status.PENDING, signup_at=now - datetime.timedelta(days=8))

    assert services.subscribers_purge_unconfirmed(now=now) == 1
    assert set(Subscriber.objects.values_list("pk", flat=True)) == {again.pk, left.pk}
    assert not Subscriber.objects.filter(pk=forgotten.pk).exists()
    assert list(SignupConsent.objects.values_list("subscriber", flat=True)) == [again.pk]
    assert not SignupConsent.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # a plain flush re-creates the groups under new ids, which the serialized tests after it then clash with
def test_concurrent_claims_for_one_pending_address_let_exactly_one_send():
    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING)
    results, barrier = [], threading.Barrier(6)

    def claim():
        barrier.wait()
        try:
            results.append(services.confirmation_claim(subscriber_id=subscriber.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True]


def test_running_the_confirmation_task_twice_sends_one_email(smtp_sink):
    from digest.tasks.subscribers import subscriber_send_confirmation_task

    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING)
    assert services.confirmation_claim(subscriber_id=subscriber.pk)
    assert subscriber_send_confirmation_task(subscriber.pk) is True
    assert subscriber_send_confirmation_task(subscriber.pk) is False
    assert len(smtp_sink.to(subscriber.email)) == 1


def test_running_the_manage_link_task_twice_sends_one_email(smtp_sink):
    from digest.tasks.subscribers import subscriber_send_manage_link_task

    subscriber = SubscriberFactory()
    assert subscriber_send_manage_link_task(subscriber.pk) is True
    assert subscriber_send_manage_link_task(subscriber.pk) is False
    assert len(smtp_sink.to(subscriber.email)) == 1


def test_the_answer_is_the_same_for_new_pending_confirmed_unsubscribed_and_suppressed_addresses(
    client, topics, smtp_sink, eager_tasks, django_capture_on_commit_callbacks, addresses_in_every_state
):
    answers = []
    for email in addresses_in_every_state:
        response = _signup(client, django_capture_on_commit_callbacks, email=email)
        followed = client.get(response["Location"])
        answers.append((response.status_code, response["Location"], followed.status_code, followed.content))
    assert len(set(answers)) == 1

    def subjects(address):
        return [m.subject for m in smtp_sink.to(address)]

    assert len(subjects("new@example.org")) == 1 and "Confirm" in subjects("new@example.org")[0]
    assert len(subjects("pending@example.org")) == 1 and "Confirm" in subjects("pending@example.org")[0]
    assert len(subjects("confirmed@example.org")) == 1 and "settings" in subjects("confirmed@example.org")[0]
    assert len(subjects("left@example.org")) == 1 and "Confirm" in subjects("left@example.org")[0]
    assert subjects("bounced@example.org") == [] and subjects("complained@example.org") == []
    assert not Subscriber.objects.filter(email="complained@example.org").exists()
    assert Subscriber.objects.get(email="bounced@example.org").status == Subscriber.Status.SUPPRESSED


def test_a_confirmed_subscribers_preferences_cannot_be_changed_through_the_public_form(
    client, topics, django_capture_on_commit_callbacks
):
    subscriber = SubscriberFactory(email="ada@example.org", digest_size=7, interests="graphs")
    _signup(client, django_capture_on_commit_callbacks, digest_size="30", interests="spam")
    subscriber.refresh_from_db()
    assert (subscriber.digest_size, subscriber.interests, subscriber.status) == (7, "graphs", "confirmed")


def test_resubscribing_after_unsubscribing_needs_a_fresh_confirmation_and_revokes_old_links(
    client, topics, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    from subscriptions.links import manage_url

    subscriber = SubscriberFactory(
        email="ada@example.org", status=Subscriber.Status.UNSUBSCRIBED, unsubscribed_at=timezone.now(),
        unsubscribe_source="one-click",
    )
    old_manage = manage_url(subscriber).split("://", 1)[1].split("/", 1)[1]

    _signup(client, django_capture_on_commit_callbacks)

    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING
    assert client.get("/" + old_manage).status_code == 410
    [message] = smtp_sink.to("ada@example.org")
    confirm_path = _link(message.part("text/plain"), "confirm").split("://", 1)[1].split("/", 1)[1]
    client.post("/" + confirm_path)
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED
    assert (subscriber.unsubscribed_at, subscriber.unsubscribe_source) == (None, "")  # not "unsubscribed at ..." now


def test_signups_are_rate_limited_per_ip_with_a_friendly_page(client, topics, settings, django_capture_on_commit_callbacks):
    settings.SIGNUP_RATE_PER_IP = "3/h"
    codes = [
        _signup(client, django_capture_on_commit_callbacks, email=f"n{i}@example.org", ip="203.0.113.50").status_code
        for i in range(4)
    ]
    assert codes == [302, 302, 302, 429]
    limited = _signup(client, django_capture_on_commit_callbacks, email="other@example.org", ip="203.0.113.50")
    assert limited.status_code == 429
    assert "try again in an hour" in limited.content.decode()
    assert not Subscriber.objects.filter(email="other@example.org").exists()
    assert _signup(client, django_capture_on_commit_callbacks, email="x@example.org", ip="203.0.113.51").status_code == 302


def test_fresh_link_requests_are_rate_limited_too(client, settings):
    settings.SIGNUP_RATE_PER_EMAIL = "2/h"
    codes = [client.post("/link/", {"email": "ada@example.org"}, REMOTE_ADDR=f"203.0.113.{70 + i}").status_code
             for i in range(3)]
    assert codes == [302, 302, 429]


def test_signups_are_rate_limited_per_normalized_address(client, topics, settings, django_capture_on_commit_callbacks):
    settings.SIGNUP_RATE_PER_EMAIL = "2/h"
    emails = ["ada@example.org", " ADA@example.org", "Ada@Example.ORG", "grace@example.org"]
    codes = [
        _signup(client, django_capture_on_commit_callbacks, email=email, ip=f"203.0.113.{60 + i}").status_code
        for i, email in enumerate(emails)
    ]
    assert codes == [302, 302, 429, 302]


@pytest.mark.parametrize(
    "field, value",
    [
        ("email", "ada@example.org\r\nBcc: victim@example.org"),
        ("email", "ada@example.org\nBcc: victim@example.org"),
        ("interests", "robots\r\nBcc: victim@example.org"),
        ("interests", "robots\rX-Injected: 1"),
        ("timezone", "UTC\r\nX: 1"),
        ("interests", "nul\x00byte"),
    ],
)
def test_line_breaks_and_control_characters_are_a_form_error(
    client, topics, field, value, django_capture_on_commit_callbacks
):
    response = _signup(client, django_capture_on_commit_callbacks, **{field: value})
    assert response.status_code == 400
    assert response.context["form"].errors.get(field)
    assert not Subscriber.objects.exists()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": ""}, "email"),
        ({"digest_size": "4"}, "digest_size"),
        ({"digest_size": "31"}, "digest_size"),
        ({"digest_size": "9" * 5000}, "digest_size"),
        ({"send_hour": "24"}, "send_hour"),
        ({"weekday": "7"}, "weekday"),
        ({"frequency": "hourly"}, "frequency"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"topics": ["retired"]}, "topics"),
        ({"topics": [], "interests": ""}, "topics"),
        ({"topics": [], "interests": ",,,,"}, "topics"),
        ({"topics": [], "interests": " ; , / \u200b "}, "topics"),
        ({"topics": [], "interests": "机器人学习"}, "interests"),
        ({"topics": [], "interests": "Interests:"}, "interests"),
        ({"interests": "x" * 501}, "interests"),
    ],
)
def test_bad_values_give_a_clear_form_error_and_store_nothing(
    client, topics, overrides, field, django_capture_on_commit_callbacks
):
    response = _signup(client, django_capture_on_commit_callbacks, **overrides)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert 'class="error"' in response.content.decode()
    assert not Subscriber.objects.exists()


def test_an_empty_form_names_every_missing_part_at_once(client, topics):
    # Nothing typed or ticked (the schedule fields keep their defaults): not the email error
    # first and "pick a topic" only once the email is fixed.
    response = client.post(reverse("subscriptions:signup"), _form(email="", topics=[], interests=""))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"email", "topics"}
    assert errors["topics"] == ["Pick at least one topic, or describe your interests below."]
    assert "Pick at least one topic, or describe your interests below." in response.content.decode()


# --- a form shown again with errors: the summary, the links, the attributes --------------


def _error_summary(html: str) -> str:
    match = re.search(r'<div class="error-summary"[^>]*>.*?</ul>', html, re.S)
    assert match, "no error summary"
    return match.group(0)


def test_a_refused_signup_is_a_400_with_the_whole_page_and_a_summary_linking_to_each_field(client, topics):
    response = client.post(reverse("subscriptions:signup"), _form(email="not-an-address", topics=[], interests=""))
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r"<title>Error: [^<]*trending research papers", html)
    assert 'id="trending-title"' in html  # the whole page, not a bare error
    summary = _error_summary(html)
    assert 'tabindex="-1" autofocus data-error-summary' in summary
    assert "There is a problem" in summary
    # In the page's order; a group of checkboxes is reached through its first box.
    assert re.findall(r'<a href="([^"]+)">', summary) == ["#id_email", "#id_topics_0"]
    assert '<a href="#id_email">Email address: Enter a valid email address.</a>' in summary
    # At the top of the form, before its first field.
    assert html.index('id="signup-form"') < html.index("There is a problem") < html.index('name="email"')


def test_each_error_is_tied_to_its_field_for_screen_readers(client, topics):
    data = _form(email="", interests="x" * 501, frequency="hourly")
    html = client.post(reverse("subscriptions:signup"), data).content.decode()
    email = re.search(r'<input type="email"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in email and 'aria-describedby="id_email_error"' in email
    assert '<p class="error" id="id_email_error">This field is required.</p>' in html
    interests = re.search(r'<input type="text" name="interests"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in interests
    assert 'aria-describedby="id_interests_helptext id_interests_error"' in interests  # the hint, then the error
    assert 'id="id_interests_error"' in html
    # A radio group: described on the group, each radio marked invalid.
    assert re.search(r'role="radiogroup"[^>]*aria-describedby="id_frequency_error"', html)
    assert len(re.findall(r'<input type="radio" name="frequency"[^>]*aria-invalid="true"', html)) == 2
    assert '<p class="error" id="id_frequency_error">' in html
    assert re.findall(r'<a href="([^"]+)">', _error_summary(html)) == ["#id_email", "#id_interests", "#id_frequency_0"]


def test_a_topics_error_is_described_on_its_fieldset(client, topics):
    html = client.post(reverse("subscriptions:signup"), _form(topics=[], interests="")).content.decode()
    assert '<fieldset class="fieldset field--error" aria-describedby="id_topics_error">' in html
    assert '<p class="error" id="id_topics_error">Pick at least one topic, or describe your interests below.</p>' in html
    assert '<a href="#id_topics_0">Topics to follow: Pick at least one topic' in html


def test_a_page_without_errors_has_no_summary_and_no_error_title(client, topics):
    html = client.get(reverse("subscriptions:signup")).content.decode()
    assert "There is a problem" not in html and "data-error-summary" not in html
    assert "<title>Error:" not in html and 'aria-invalid' not in html


@pytest.mark.parametrize("field", ["topics", "frequency", "weekday", "send_hour", "timezone"])
def test_a_value_not_offered_is_refused_without_repeating_it(client, topics, field):
    bogus = "Zq<b>bogus-answer</b>"
    response = client.post(reverse("subscriptions:signup"), _form(**{field: [bogus] if field == "topics" else bogus}))
    assert response.status_code == 400
    assert response.context["form"].errors[field] == ["Choose one of the listed options."]
    html = response.content.decode()
    assert "bogus-answer" not in html and "not one of the available choices" not in html
    assert "Choose one of the listed options." in _error_summary(html)


def test_the_delivery_time_says_it_is_in_the_time_zone_chosen_on_the_form(client, topics):
    html = client.get(reverse("subscriptions:signup")).content.decode()
    select = re.search(r'<select name="send_hour"[^>]*>', html).group(0)
    assert 'aria-describedby="id_send_hour_helptext"' in select
    assert '<p class="help" id="id_send_hour_helptext">In the time zone chosen below.</p>' in html
    assert html.index('id="id_send_hour"') < html.index('id="id_timezone"')  # "below" is true


def test_a_refused_signup_answers_the_same_and_reads_nothing_whatever_the_address_state(
    client, topics, addresses_in_every_state
):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    client.get("/")  # topics cached
    seen = []
    for email in addresses_in_every_state:
        with CaptureQueriesContext(db) as queries:
            response = _post(client, email=email, digest_size="99")
        page = response.content.decode().replace(email, "ADDRESS")
        page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)  # masked afresh for each page
        seen.append((response.status_code, page, tuple(q["sql"] for q in queries.captured_queries)))
    assert len(set(seen)) == 1 and seen[0][0] == 400
    assert all("subscriptions_subscriber" not in sql and "suppression" not in sql for sql in seen[0][2])
    assert not SignupRequest.objects.exists()


def test_an_interests_error_of_its_own_is_not_joined_by_the_pick_a_topic_one(
    client, topics, django_capture_on_commit_callbacks
):
    response = _signup(client, django_capture_on_commit_callbacks, topics=[], interests="robots\r\nBcc: x@example.org")
    assert set(response.context["form"].errors) == {"interests"}


def test_a_nul_character_gives_one_clear_message(client, topics, django_capture_on_commit_callbacks):
    response = _signup(client, django_capture_on_commit_callbacks, interests="robots\x00arms")
    assert response.context["form"].errors["interests"] == ["This contains control characters; please type it again."]
    assert not SignupRequest.objects.exists()


def test_invisible_characters_are_taken_out_of_interests_and_the_text_is_nfc(
    client, topics, django_capture_on_commit_callbacks
):
    typed = "\ufeffrobot\u200b learning, re\u0301seaux\u00ad de neurones, \u2060world\u200c \u200dmodels"
    assert _signup(client, django_capture_on_commit_callbacks, interests=typed).status_code == 302
    assert Subscriber.objects.get().interests == "robot learning, r\u00e9seaux de neurones, world models"


def test_punctuation_only_interests_beside_a_topic_are_stored_as_no_interests(
    client, topics, django_capture_on_commit_callbacks
):
    assert _signup(client, django_capture_on_commit_callbacks, topics=["robotics"], interests=",,,,").status_code == 302
    assert Subscriber.objects.get().interests == ""


def test_an_address_with_accents_before_the_at_is_told_why_it_is_refused(
    client, topics, django_capture_on_commit_callbacks
):
    response = _signup(client, django_capture_on_commit_callbacks, email="jöhn@example.org")
    [error] = response.context["form"].errors["email"]
    assert "accents" in error and "before the @" in error
    # Anything else wrong with it is the usual message: the hint is about what was typed, nothing more.
    response = _signup(client, django_capture_on_commit_callbacks, email="jöhn@@example")
    assert response.context["form"].errors["email"] == ["Enter a valid email address."]
    # An accented domain is still accepted, as before.
    assert _signup(client, django_capture_on_commit_callbacks, email="john@exämple.org").status_code == 302
    assert not SignupRequest.objects.exists() and Subscriber.objects.count() == 1


@pytest.mark.parametrize(
    "email", ["ada@localhost", "ada@LOCALHOST.", "ada@intranet", "ada@[192.0.2.1]", "ada@[2001:db8::1]", "jöhn@localhost"]
)
def test_an_address_whose_domain_is_no_dotted_name_gets_the_usual_form_error(
    client, topics, django_capture_on_commit_callbacks, email
):
    response = _signup(client, django_capture_on_commit_callbacks, email=email)
    assert response.status_code == 400
    assert response.context["form"].errors["email"] == ["Enter a valid email address."]
    assert not SignupRequest.objects.exists() and not Subscriber.objects.exists()


def test_an_internationalised_domain_is_one_subscriber_in_either_spelling(
    client, topics, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    _signup(client, django_capture_on_commit_callbacks, email="Ada@Bücher.example")
    _signup(client, django_capture_on_commit_callbacks, email="ada@XN--BCHER-KVA.example")
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ada@xn--bcher-kva.example"]
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["ada@xn--bcher-kva.example"]]  # the second came within the hour


def test_the_unique_address_holds_for_both_spellings_of_a_domain():
    from django.db import IntegrityError

    SubscriberFactory(email="ada@bücher.example")
    assert Subscriber.objects.get().email == "ada@xn--bcher-kva.example"
    with pytest.raises(IntegrityError):
        SubscriberFactory(email="ada@xn--bcher-kva.example")


def test_a_suppressed_address_stays_suppressed_in_the_other_spelling(client, topics, django_capture_on_commit_callbacks):
    services.subscriber_suppress(email="ada@xn--bcher-kva.example", reason="hard bounce")
    _signup(client, django_capture_on_commit_callbacks, email="ada@bücher.example")
    assert not Subscriber.objects.exists()
    assert list(Suppression.objects.values_list("email", flat=True)) == ["ada@xn--bcher-kva.example"]


def test_addresses_stored_with_an_internationalised_domain_are_migrated_to_its_ascii_form():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("subscriptions.migrations.0006_ascii_domains_signup_consent")
    # Rows as saved before the rule: .update() writes them past Subscriber.save's normalising.
    alone, twice = SubscriberFactory(email="ada@a.example"), SubscriberFactory(email="bob@a.example")
    SubscriberFactory(email="bob@xn--bcher-kva.example")
    Subscriber.objects.filter(pk=alone.pk).update(email="ada@bücher.example")
    Subscriber.objects.filter(pk=twice.pk).update(email="bob@bücher.example")
    Suppression.objects.create(email="eve@xn--bcher-kva.example", reason="complaint")
    Suppression.objects.bulk_create([Suppression(email="eve@bücher.example", reason="bounce"),
                                     Suppression(email="max@bücher.example", reason="bounce")])
    migration.forwards(apps, None)
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
        "ada@xn--bcher-kva.example", "bob@bücher.example", "bob@xn--bcher-kva.example"]  # two to merge by hand
    assert sorted(Suppression.objects.values_list("email", flat=True)) == [
        "eve@xn--bcher-kva.example", "max@xn--bcher-kva.example"]


def test_invalid_submissions_do_not_use_up_the_per_ip_limit(client, topics, settings, django_capture_on_commit_callbacks):
    """One university NAT: ten typos from its address must not lock out the next valid signup."""
    settings.SIGNUP_RATE_PER_IP = "3/h"
    for i in range(10):
        response = _signup(client, django_capture_on_commit_callbacks, email=f"typo{i}@", ip="203.0.113.80")
        assert response.status_code == 400 and "email" in response.context["form"].errors
    assert not SignupRequest.objects.exists() and not Subscriber.objects.exists()
    codes = [_signup(client, django_capture_on_commit_callbacks, email=f"n{i}@example.org", ip="203.0.113.80").status_code
             for i in range(4)]
    assert codes == [302, 302, 302, 429]  # valid ones still count


def test_invalid_fresh_link_requests_do_not_use_up_the_per_ip_limit(client, settings):
    settings.SIGNUP_RATE_PER_IP = "2/h"
    for _ in range(5):
        assert client.post("/link/", {"email": "not-an-address"}, REMOTE_ADDR="203.0.113.90").status_code == 400
    codes = [client.post("/link/", {"email": f"n{i}@example.org"}, REMOTE_ADDR="203.0.113.90").status_code
             for i in range(3)]
    assert codes == [302, 302, 429]


def test_interests_alone_are_enough(client, topics, django_capture_on_commit_callbacks):
    response = _signup(client, django_capture_on_commit_callbacks, topics=[], interests="  protein   folding ")
    assert response.status_code == 302
    assert Subscriber.objects.get().interests == "protein folding"


def test_the_sweep_runs_every_minute_from_beat():
    from digest.celery import app

    [entry] = [e for e in app.conf.beat_schedule.values() if e["task"] == "digest.tasks.signup_requests_drain_task"]
    assert entry["schedule"] == 60.0
    assert "digest.tasks.signup_requests_drain_task" in app.tasks


def test_a_request_that_never_applied_is_forgotten_with_the_unconfirmed_signups(client, topics, monkeypatch):
    monkeypatch.setattr(services, "signup_requests_drain_soon", lambda: None)
    with time_machine.travel(timezone.now() - datetime.timedelta(days=8)):
        _post(client, email="old@example.org")
    _post(client, email="recent@example.org")
    services.subscribers_purge_unconfirmed()
    assert list(SignupRequest.objects.values_list("email", flat=True)) == ["recent@example.org"]


def test_a_signup_post_is_a_fixed_small_number_of_queries(
    client, topics, django_assert_num_queries, django_capture_on_commit_callbacks
):
    # The topics (the cache is empty), then the request's INSERT; the worker does the rest.
    with django_assert_num_queries(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = _post(client, email="fast@example.org")
    assert response.status_code == 302
    assert not Subscriber.objects.exists()
    assert services.signup_requests_process() == 1
    subscriber = Subscriber.objects.get(email="fast@example.org")
    assert [t.slug for t in subscriber.topics.all()] == ["robotics"]
    assert subscriber.status == Subscriber.Status.PENDING and subscriber.last_confirmation_sent_at
    assert subscriber.signup_ip == "203.0.113.7" and subscriber.signup_user_agent == "Mozilla/5.0 test"
    assert not SignupRequest.objects.exists()


def test_the_signup_post_does_the_same_queries_and_answers_the_same_whatever_the_address_state(
    client, topics, django_capture_on_commit_callbacks, monkeypatch, addresses_in_every_state
):
    """No enumeration by timing either: the web request reads nothing about the address.

    Every state costs the same statements (only the address in the parameters differs) and
    the same drain request; what each state means is the worker's business.
    """
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    drains = []
    monkeypatch.setattr(services, "signup_requests_drain_soon", lambda: drains.append(1))
    client.get("/")  # topics cached, as for every visitor but the first

    seen = []
    for email in addresses_in_every_state:
        with CaptureQueriesContext(db) as queries, django_capture_on_commit_callbacks(execute=True):
            response = _post(client, email=email)
        statements = [re.sub(r"'[^']*'", "?", q["sql"]) for q in queries.captured_queries]  # values aside
        seen.append((response.status_code, response["Location"], response.content, tuple(statements)))
    assert len(set(seen)) == 1
    assert len(seen[0][3]) == 1 and "subscriptions_signuprequest" in seen[0][3][0]
    assert all("subscriptions_subscriber" not in sql and "suppression" not in sql for sql in seen[0][3])
    assert len(drains) == 6
    assert SignupRequest.objects.count() == 6


def test_a_recorded_signup_is_kept_through_a_broker_outage_and_the_sweep_applies_it(
    client, topics, smtp_sink, django_capture_on_commit_callbacks, monkeypatch, eager_tasks
):
    from kombu.exceptions import OperationalError

    from digest.tasks.subscribers import signup_requests_drain_task

    def broker_down(*args, **kwargs):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(signup_requests_drain_task, "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            response = _post(client)
    assert response.status_code == 302  # the request is committed before the answer
    assert SignupRequest.objects.count() == 1 and smtp_sink.messages == []

    with django_capture_on_commit_callbacks(execute=True):
        assert signup_requests_drain_task() == 1  # what beat runs every minute
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    assert "Confirm" in smtp_sink.to("ada@example.org")[0].subject
    assert not SignupRequest.objects.exists()


def test_running_the_drain_task_twice_applies_each_request_once_and_sends_one_email(
    client, topics, smtp_sink, eager_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    from digest.tasks.subscribers import signup_requests_drain_task

    monkeypatch.setattr(services, "signup_requests_drain_soon", lambda: None)  # the worker is late
    with django_capture_on_commit_callbacks(execute=True):
        _post(client)
    for expected in (1, 0):
        with django_capture_on_commit_callbacks(execute=True):
            assert signup_requests_drain_task() == expected
    assert len(smtp_sink.to("ada@example.org")) == 1
    assert Subscriber.objects.count() == 1


def test_the_first_form_of_an_address_is_the_one_it_holds_when_both_wait_for_the_worker(
    client, topics, django_capture_on_commit_callbacks, monkeypatch
):
    """Requests are applied oldest first; a later signup of a pending address changes nothing of it."""
    monkeypatch.setattr(services, "signup_requests_drain_soon", lambda: None)
    _post(client, digest_size="12")
    _post(client, digest_size="20", ip="203.0.113.8")
    services.signup_requests_process()
    assert Subscriber.objects.get().digest_size == 12


def test_a_request_that_cannot_be_applied_is_kept_and_counted_and_the_others_still_apply(
    client, topics, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(services, "signup_requests_drain_soon", lambda: None)
    _post(client, email="broken@example.org")
    _post(client, email="fine@example.org")
    real = services.subscriber_signup

    def flaky(*, email, **kwargs):
        if email == "broken@example.org":
            raise RuntimeError("boom")
        return real(email=email, **kwargs)

    monkeypatch.setattr(services, "subscriber_signup", flaky)
    for _ in range(services.SIGNUP_REQUEST_MAX_ATTEMPTS + 1):
        services.signup_requests_process()
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["fine@example.org"]
    left = SignupRequest.objects.get()
    assert (left.email, left.attempts) == ("broken@example.org", services.SIGNUP_REQUEST_MAX_ATTEMPTS)


def test_a_topic_ticked_twice_is_linked_once(client, topics, django_capture_on_commit_callbacks):
    response = _signup(client, django_capture_on_commit_callbacks, topics=["robotics", "robotics", "computer-vision"])
    assert response.status_code == 302
    assert sorted(t.slug for t in Subscriber.objects.get().topics.all()) == ["computer-vision", "robotics"]


def test_the_landing_page_follows_topic_and_trending_changes(client, topics):
    today = timezone.localdate()
    assert "Quantum computing" not in client.get("/").content.decode()  # now cached

    TopicFactory(name="Quantum computing", slug="quantum", position=3)
    entry = TrendingEntryFactory(paper=PaperFactory(title="Qubits for everyone"), date=today)
    html = client.get("/").content.decode()
    assert "Quantum computing" in html and "Qubits for everyone" in html

    entry.paper.hidden = True
    entry.paper.save()
    Topic.objects.filter(slug="quantum").get().delete()
    html = client.get("/").content.decode()
    assert "Quantum computing" not in html and "Qubits for everyone" not in html


def test_the_landing_page_follows_hide_unhide_and_pin_at_once(client, topics):
    """The curation actions are bulk updates, which send no post_save: they drop the cached page themselves."""
    from digest.services import curation

    paper = TrendingEntryFactory(paper=PaperFactory(title="Qubits for everyone"), date=timezone.localdate()).paper
    TrendingEntryFactory(paper=PaperFactory(title="Another paper"), date=timezone.localdate())
    assert "Qubits for everyone" in client.get("/").content.decode()  # now cached

    curation.papers_hide(paper_ids=[paper.pk])
    assert "Qubits for everyone" not in client.get("/").content.decode()
    curation.papers_hide(paper_ids=[paper.pk], hidden=False)
    assert "Qubits for everyone" in client.get("/").content.decode()
    curation.papers_hide(paper_ids=[paper.pk])
    client.get("/")
    curation.papers_pin(paper_ids=[paper.pk])  # pinning also un-hides
    assert "Qubits for everyone" in client.get("/").content.decode()


def test_a_landing_page_whose_latest_day_is_all_hidden_shows_the_last_day_with_papers(client, topics):
    today = timezone.localdate()
    TrendingEntryFactory(paper=PaperFactory(title="Hidden by a curator", hidden=True), date=today)
    TrendingEntryFactory(paper=PaperFactory(title="The day before"), date=today - datetime.timedelta(days=1))
    html = client.get("/").content.decode()
    assert "The day before" in html and "hasn't been fetched yet" not in html
    assert f"Trending on {(today - datetime.timedelta(days=1)):%A}" in html


def test_every_visitor_gets_their_own_csrf_token_in_the_shared_landing_page(topics):
    from django.test import Client

    pages = []
    for _ in range(2):
        visitor = Client(enforce_csrf_checks=True)
        response = visitor.get("/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode()).group(1)
        pages.append((visitor, token, response.cookies["csrftoken"].value))
    (first, first_token, first_cookie), (second, second_token, second_cookie) = pages
    assert first_cookie != second_cookie
    # Each visitor's form token matches their own cookie, and only theirs.
    data = _form(email="one@example.org", csrfmiddlewaretoken=first_token)
    assert first.post("/", data).status_code == 302
    second.cookies["csrftoken"] = second_cookie
    data = _form(email="two@example.org", csrfmiddlewaretoken=first_token)
    assert second.post("/", data).status_code == 403


def test_with_redis_unreachable_the_landing_page_is_still_served(client, topics, settings):
    from django.core.cache import caches

    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"}}
    caches["default"].close()
    del caches["default"]  # rebuilt from the new settings on next use
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Robotics" in html and 'name="csrfmiddlewaretoken"' in html


def test_with_redis_unreachable_a_signup_gets_a_clear_503_and_nothing_is_saved(client, topics, settings):
    from django.core.cache import caches

    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"}}
    caches["default"].close()
    del caches["default"]  # rebuilt from the new settings on next use
    response = client.post(reverse("subscriptions:signup"), _form())
    assert response.status_code == 503
    assert "try again in a few minutes" in response.content.decode()
    assert not Subscriber.objects.exists()
    assert not SignupRequest.objects.exists()


def test_a_confirmation_whose_queueing_failed_after_the_signup_committed_is_sent_by_the_next_sweep(
    client, topics, smtp_sink, django_capture_on_commit_callbacks, monkeypatch, eager_tasks
):
    from kombu.exceptions import OperationalError

    from digest.tasks.subscribers import (
        confirmations_requeue_lost_task,
        signup_requests_drain_task,
        subscriber_send_confirmation_task,
    )

    def broker_down(*args, **kwargs):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(signup_requests_drain_task, "delay", lambda *a, **kw: None)  # the sweep drains it below
        with django_capture_on_commit_callbacks(execute=True):
            _post(client)
    with monkeypatch.context() as patch:
        patch.setattr(subscriber_send_confirmation_task, "delay", broker_down)
        with pytest.raises(OperationalError), django_capture_on_commit_callbacks(execute=True):
            services.signup_requests_process()  # the request is applied and gone; the email is not queued
        # While the broker is still down, a sweep queues nothing and keeps the subscriber waiting.
        assert confirmations_requeue_lost_task() == 0
    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.PENDING and subscriber.last_confirmation_sent_at is None
    assert not SignupRequest.objects.exists() and smtp_sink.messages == []

    assert confirmations_requeue_lost_task() == 1  # what beat runs every five minutes
    assert confirmations_requeue_lost_task() == 0  # a second sweep finds nothing lost
    [message] = smtp_sink.to("ada@example.org")
    assert "Confirm" in message.subject


def test_the_lost_confirmation_sweep_leaves_sent_confirmations_and_expired_signups_alone(smtp_sink, eager_tasks):
    from digest.tasks.subscribers import confirmations_requeue_lost_task

    now = timezone.now()
    SubscriberFactory(status="pending", last_confirmation_sent_at=now)  # on its way
    SubscriberFactory(status="confirmed", last_confirmation_sent_at=None)
    SubscriberFactory(status="pending", last_confirmation_sent_at=None, signup_at=now - datetime.timedelta(days=30))
    assert confirmations_requeue_lost_task() == 0 and smtp_sink.messages == []


def test_the_lost_confirmation_sweep_sends_for_a_recent_later_signup_of_an_old_pending_address(smtp_sink, eager_tasks):
    now = timezone.now()
    subscriber = SubscriberFactory(status="pending", last_confirmation_sent_at=None, signup_at=now - datetime.timedelta(days=30))
    consent = SignupConsent.objects.create(subscriber=subscriber, signup_at=now - datetime.timedelta(minutes=5))
    assert services.confirmations_requeue_lost(now=now) == 1
    [message] = smtp_sink.to(subscriber.email)
    path = _link(message.part("text/plain"), "confirm").split("://", 1)[1].split("/", 1)[1]
    from subscriptions.tokens import confirm_token_read

    assert confirm_token_read(token=path.split("/")[1]) == (subscriber, consent)


def test_the_lost_confirmation_sweep_runs_from_beat():
    from digest.celery import app

    [entry] = [e for e in app.conf.beat_schedule.values() if e["task"] == "digest.tasks.confirmations_requeue_lost_task"]
    assert entry["schedule"] <= 600


def test_interests_longer_than_the_limit_are_refused_with_their_length_not_cut_by_the_page(
    client, topics, django_capture_on_commit_callbacks
):
    page = client.get(reverse("subscriptions:signup")).content.decode()
    interests_input = re.search(r'<input[^>]*name="interests"[^>]*>', page).group(0)
    assert "maxlength" not in interests_input  # a browser would cut a long paste mid-word, silently
    response = _signup(client, django_capture_on_commit_callbacks, interests="robot learning, " * 40)
    [error] = response.context["form"].errors["interests"]
    assert "at most 500 characters" in error and "639" in error
    assert not SignupRequest.objects.exists()


def test_a_reader_who_had_todays_digest_and_confirms_again_is_told_the_next_comes_tomorrow(client):
    """One digest per local day: unsubscribed after today's, signed up again and confirmed the same day."""
    from digest.models import Delivery, Edition
    from subscriptions.tokens import Purpose, token_make

    reader = SubscriberFactory(status=Subscriber.Status.PENDING, timezone="UTC", send_hour=6)
    edition = Edition.objects.create(date=timezone.localdate())
    Delivery.objects.create(edition=edition, subscriber=reader, state=Delivery.State.SENT)  # planned today
    url = reverse("subscriptions:confirm", kwargs={"token": token_make(subscriber=reader, purpose=Purpose.CONFIRM)})

    confirmed = client.post(url)
    welcome = " ".join(client.get(confirmed["Location"]).content.decode().split())
    again = " ".join(client.get(url).content.decode().split())

    for page in (welcome, again):
        assert "You've had today's digest; the next comes tomorrow at 06:00 (UTC)." in page
        assert "within a quarter of an hour" not in page


@time_machine.travel(datetime.datetime(2026, 1, 15, 12, tzinfo=datetime.timezone.utc), tick=False)
def test_the_time_zone_menu_lists_real_places_with_their_offset_and_still_accepts_an_alias(
    client, topics, django_capture_on_commit_callbacks
):
    page = client.get(reverse("subscriptions:signup")).content.decode()
    menu = re.search(r'<select[^>]*name="timezone".*?</select>', page, re.S).group(0)
    assert ">Europe/Berlin (UTC+01:00)<" in menu and ">America/New York (UTC\u221205:00)<" in menu
    assert ">UTC (UTC+00:00)<" in menu
    for trap in ("Etc/GMT+12", "US/Eastern", '"GB"', "EST5EDT"):
        assert trap not in menu, trap
    # A browser (or an old reader) may still name a zone by its alias: it is valid.
    assert _signup(client, django_capture_on_commit_callbacks, timezone="Asia/Calcutta").status_code == 302


def _persona_interests() -> list[str]:
    import json
    from pathlib import Path

    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                found.append(value) if key == "interests" and isinstance(value, str) else walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in sorted((Path(__file__).parent / "personas").glob("*.json")):
        walk(json.loads(path.read_text()))
    return sorted(set(found))


@pytest.mark.parametrize("interests", ["the, and, of", "a, b, c", "robot learning, the", "x"])
def test_interests_the_matcher_drops_entirely_are_refused_naming_the_phrase(client, topics, interests):
    response = _post(client, interests=interests)
    assert response.status_code == 400
    errors = response.context["form"].errors["interests"]
    assert len(errors) == 1 and "too common or too short to match" in errors[0]
    assert "“robot learning”" not in errors[0]
    assert ("“the”" if "the" in interests else f"“{interests.split(',')[0]}”") in errors[0]
    assert not Subscriber.objects.exists()


@pytest.mark.parametrize("interests", ["RL", "3D", "GAN", "C++", "Go", "ML, AI", "LLMs", "the RL of robots",
                                       *_persona_interests()])
def test_short_terms_and_every_personas_interests_still_validate(interests):
    from subscriptions.forms import InterestsField

    assert InterestsField(required=False, max_length=500).clean(interests)


UNENCODABLE_DOMAINS = ["yan@" + "ö" * 61 + ".org", "lea@aא.example", "a@" + "ü" * 60 + ".com"]


@pytest.mark.parametrize("email", UNENCODABLE_DOMAINS)
def test_an_address_whose_domain_idna_cannot_encode_gets_a_form_error_and_no_email(
    client, topics, smtp_sink, eager_tasks, django_capture_on_commit_callbacks, email
):
    response = _signup(client, django_capture_on_commit_callbacks, email=email)
    assert response.status_code == 400
    assert response.context["form"].errors["email"] == [
        "The part after the @ is not a domain name mail can be sent to; please check it for typos."]
    assert not SignupRequest.objects.exists() and not Subscriber.objects.exists()
    assert smtp_sink.messages == []


def test_a_sharp_s_domain_keeps_its_sharp_s_under_idna_2008(
    client, topics, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    # IDNA 2003 (Python's "idna" codec) would make it strasse.example: someone else's domain.
    _signup(client, django_capture_on_commit_callbacks, email="hans@straße.example")
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["hans@xn--strae-oqa.example"]
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["hans@xn--strae-oqa.example"]]


def test_the_confirmation_task_skips_a_stored_address_idna_cannot_encode(smtp_sink, settings):
    from digest.tasks.subscribers import subscriber_send_confirmation_task

    ok = SubscriberFactory(email="ok@example.org", status=Subscriber.Status.PENDING)
    bad = SubscriberFactory(email=UNENCODABLE_DOMAINS[0], status=Subscriber.Status.PENDING)  # stored before the check
    assert subscriber_send_confirmation_task(bad.pk) is False  # no UnicodeError, so no retry loop
    assert subscriber_send_confirmation_task(ok.pk) is True
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["ok@example.org"]]
