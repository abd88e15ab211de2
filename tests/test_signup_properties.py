"""Property-based: whatever is typed into the signup form, the answer is a form error or success, never a 500."""

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from subscriptions.models import Subscriber
from subscriptions.services import signup_requests_process
from digest.models import Topic
from tests.factories import TopicFactory

pytestmark = pytest.mark.django_db

# Any text a browser can send (UTF-8 cannot carry lone surrogates).
any_char = st.characters(blacklist_categories=("Cs",))
any_text = st.text(any_char, max_size=80)
huge_text = st.builds(lambda ch, n: ch * n, any_char, st.integers(min_value=250, max_value=20_000))
injection = st.builds(
    lambda a, brk, b: a + brk + b,
    any_text,
    st.sampled_from(["\r\n", "\n", "\r", "\r\nBcc: victim@example.org\r\n", "%0d%0a", "\u2028", "\x85"]),
    any_text,
)
odd_unicode = st.sampled_from(
    ["ADA@EXAMPLE.ORG", "ada@bücher.example", "İstanbul@example.org", "ａｄａ@example.org", "ada@example.org\u200b",
     "a\u0301da@example.org", "ada@xn--bcher-kva.example", "\ufeffada@example.org", "ada@[127.0.0.1]", "ada@.org"]
)
field_value = st.one_of(any_text, huge_text, injection, odd_unicode)


def valid_values():
    return st.fixed_dictionaries(
        {
            "email": st.sampled_from(["ada@example.org", "Grace.Hopper+news@Example.COM", " alan@example.net "]),
            "topics": st.lists(st.sampled_from(["robotics", "speech", "nope", "ROBOTICS"]), max_size=3),
            "interests": st.sampled_from(["", "diffusion models, video generation", "ünïcödé ⚛ physics"]),
            "frequency": st.sampled_from(["daily", "weekly"]),
            "weekday": st.sampled_from([str(i) for i in range(7)]),
            "send_hour": st.sampled_from([str(i) for i in range(24)]),
            "timezone": st.sampled_from(["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"]),
            "digest_size": st.sampled_from(["5", "10", "30"]),
        }
    )


@st.composite
def submissions(draw):
    data = draw(valid_values())
    # Replace any subset of fields with hostile values.
    for name in draw(st.sets(st.sampled_from(sorted(data)))):
        data[name] = draw(st.lists(field_value, min_size=1, max_size=3)) if name == "topics" else draw(field_value)
    return data


@pytest.fixture
def topics(settings):
    settings.SIGNUP_RATE_PER_IP = "100000/h"
    settings.SIGNUP_RATE_PER_EMAIL = "100000/h"
    Topic.objects.all().delete()  # the test owns its topic list, not the default-topics migration
    TopicFactory(name="Robotics", slug="robotics")
    TopicFactory(name="Speech", slug="speech")


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=submissions())
def test_any_signup_submission_is_an_error_or_a_success_never_a_500(client, topics, django_capture_on_commit_callbacks, data):
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("subscriptions:signup"), data)
        signup_requests_process()  # the worker's part
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        email = data["email"].strip().lower()
        subscriber = Subscriber.objects.get(email=email)
        for value in (subscriber.email, subscriber.interests, subscriber.timezone):
            assert "\r" not in value and "\n" not in value
        assert 5 <= subscriber.digest_size <= 30 and 0 <= subscriber.send_hour <= 23
    elif response.status_code == 400:
        form = response.context["form"]
        assert form.errors
        assert 'class="error"' in response.content.decode()


@pytest.mark.parametrize("name", ["email", "topics", "interests", "frequency", "weekday", "send_hour", "timezone", "digest_size"])
def test_a_line_break_in_any_field_is_refused(client, topics, django_capture_on_commit_callbacks, name):
    data = {"email": "ada@example.org", "topics": ["robotics"], "interests": "", "frequency": "daily", "weekday": "0",
            "send_hour": "7", "timezone": "UTC", "digest_size": "10"}
    data[name] = ["robotics\r\n"] if name == "topics" else data[name] + "\r\nBcc: victim@example.org"
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("subscriptions:signup"), data)
    assert response.status_code == 400
    assert name in response.context["form"].errors
    assert not Subscriber.objects.exists()


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(email=st.one_of(field_value, st.lists(field_value, min_size=2, max_size=3)))
def test_any_fresh_link_request_is_an_error_or_the_same_answer_never_a_500(client, topics, email):
    response = client.post(reverse("subscriptions:link_request"), {"email": email})
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert response["Location"] == reverse("subscriptions:link_sent")
    else:
        assert response.context["form"].errors["email"]
