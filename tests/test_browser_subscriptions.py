"""End to end in headless Chromium: sign up, confirm from the email, manage, unsubscribe.

Real parts only: Django's live server, a Celery worker consuming from the real Redis,
Django's SMTP backend talking to an aiosmtpd server on loopback. Screenshots of the
signup and manage pages (phone and desktop) are saved under tests/artifacts/.
"""

import os
import re
import time

import pytest
from django.utils import timezone

from digest.models import Topic
from subscriptions.models import Subscriber
from subscriptions.services import signup_requests_process
from tests.browser_support import ARTIFACTS, CHROMIUM, browser  # noqa: F401
from tests.factories import PaperFactory, TrendingEntryFactory

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    # Committed data for live_server and the worker; serialized_rollback puts back what the
    # migrations created (groups, topics) without a post_migrate re-creating it first, which
    # made a serialized test running after this file fail on a duplicate group.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (CI installs Debian's chromium)"),
]

PAPERS = [
    ("Scaling Diffusion Transformers to Video at Minute Length", 214),
    ("Robots That Ask for Help: Uncertainty-Aware Manipulation Policies", 187),
    ("Speculative Decoding Without a Draft Model", 152),
    ("A Benchmark for Long-Context Reasoning over Scientific Tables", 131),
    ("Self-Supervised Depth from a Single Moving Camera", 96),
    ("Sparse Autoencoders Find Interpretable Features in Speech Models", 88),
]



@pytest.fixture
def worker(transactional_db):
    """A real Celery worker, in this process, consuming the real Redis queue."""
    from celery.contrib.testing.worker import start_worker

    from digest.celery import app

    app.control.purge()  # tasks other tests left in the queue belong to rows that no longer exist
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=30):
        yield


@pytest.fixture
def site(live_server, settings, monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the ORM calls here are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.SITE_URL = live_server.url
    settings.SIGNUP_RATE_PER_IP = "100/h"
    # The shipped topic list (a transactional test may have flushed the migration's rows).
    from digest.matching.default_topics import DEFAULT_TOPICS

    for position, topic in enumerate(DEFAULT_TOPICS):
        Topic.objects.get_or_create(slug=topic["slug"], defaults={"name": topic["name"], "position": position})
    for rank, (title, upvotes) in enumerate(PAPERS, start=1):
        paper = PaperFactory(title=title, upvotes=upvotes)
        TrendingEntryFactory(paper=paper, rank=rank, upvotes=upvotes, date=timezone.localdate())
    ARTIFACTS.mkdir(exist_ok=True)
    return live_server.url


def _wait_for_mail(sink, address, count, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sink.to(address)
        if len(messages) >= count:
            return messages
        time.sleep(0.1)
    raise AssertionError(f"{address} received {len(sink.to(address))} emails, expected {count}")


def _link(message, kind: str) -> str:
    return re.search(rf"https?://\S+/{kind}/[^\s/]+/", message.part("text/plain")).group(0)


def _unlabelled_controls(page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                 .filter(el => !el.labels || el.labels.length === 0).map(el => el.name)"""
    )


def test_sign_up_confirm_manage_and_unsubscribe_in_a_real_browser(browser, site, worker, smtp_sink):
    errors = []
    desktop = browser.new_context(viewport=DESKTOP, timezone_id="Europe/Berlin", locale="en-GB")
    page = desktop.new_page()
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    # The landing page: the form, the topics and today's papers.
    page.goto(site + "/")
    assert page.get_by_role("heading", name="Get the digest").is_visible()
    assert page.get_by_text(PAPERS[0][0]).is_visible()
    assert page.locator("select[name=timezone]").input_value() == "Europe/Berlin"  # pre-filled by the script
    assert page.locator("select[name=weekday]").is_hidden()  # daily is the default
    assert _unlabelled_controls(page) == []
    page.screenshot(path=str(ARTIFACTS / "signup-desktop.png"), full_page=True)

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    phone_page = phone.new_page()
    phone_page.goto(site + "/")
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    phone_page.screenshot(path=str(ARTIFACTS / "signup-phone.png"), full_page=True)

    # Sign up, keyboard-friendly labels all the way.
    page.get_by_label("Email address").fill("Reader@Example.org")
    page.get_by_label("Robotics and autonomous driving").check()
    page.get_by_label("Video", exact=True).check()
    page.get_by_label("Anything more specific?").fill("diffusion models, video generation")
    page.get_by_role("radio", name="Weekly").check()
    page.get_by_label("Day (weekly digests)").select_option(label="Friday")
    page.get_by_label("Delivery time").select_option(label="08:00")
    page.get_by_label("Papers per digest").fill("15")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()

    subscriber = Subscriber.objects.get(email="reader@example.org")
    assert subscriber.status == Subscriber.Status.PENDING
    assert (subscriber.frequency, subscriber.weekday, subscriber.send_hour) == ("weekly", 4, 8)
    assert (subscriber.timezone, subscriber.digest_size) == ("Europe/Berlin", 15)
    assert "HeadlessChrome" in subscriber.signup_user_agent and subscriber.signup_ip == "127.0.0.1"

    # The confirmation email arrives through the worker and real SMTP.
    [confirmation] = _wait_for_mail(smtp_sink, "reader@example.org", 1)
    assert "Confirm" in confirmation.subject
    page.goto(_link(confirmation, "confirm"))
    page.get_by_role("heading", name="One click to confirm").wait_for()
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING  # opening the link is not confirming
    page.get_by_role("button", name="Confirm my subscription").click()
    page.get_by_text("You're in.").wait_for()
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED and subscriber.confirmed_at is not None

    # Signing up again with a confirmed address mails a manage link instead.
    page.goto(site + "/")
    page.get_by_label("Email address").fill("reader@example.org")
    page.get_by_label("Speech and audio").check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    manage_mail = _wait_for_mail(smtp_sink, "reader@example.org", 2)[1]
    assert "settings" in manage_mail.subject
    manage = _link(manage_mail, "manage")

    page.goto(manage)
    page.get_by_role("heading", name="Your subscription").wait_for()
    assert page.get_by_label("Robotics and autonomous driving").is_checked() and not page.get_by_label("Speech and audio").is_checked()
    assert _unlabelled_controls(page) == []
    page.screenshot(path=str(ARTIFACTS / "manage-desktop.png"), full_page=True)
    phone_page.goto(manage)
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone_page.screenshot(path=str(ARTIFACTS / "manage-phone.png"), full_page=True)

    # Change topics.
    page.get_by_label("Robotics and autonomous driving").uncheck()
    page.get_by_label("Speech and audio").check()
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Saved.").wait_for()
    assert sorted(t.slug for t in subscriber.topics.all()) == ["speech-audio", "video"]
    assert "saved" not in page.url  # the notice is not in the address: a reload does not repeat it
    page.reload()
    assert page.get_by_text("Saved.").count() == 0

    # Unsubscribe.
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You're unsubscribed").wait_for()
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribe_source == "manage-page"

    assert [e for e in errors if "Content Security Policy" in e or "Refused" in e] == []
    desktop.close()
    phone.close()


def test_the_form_works_without_javascript(browser, site):
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(site + "/")
    assert page.locator("select[name=weekday]").is_visible()  # nothing hidden without the script
    page.get_by_label("Email address").fill("nojs@example.org")
    page.get_by_label("Large language models").check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    signup_requests_process()  # the worker's part (no worker runs in this test)
    subscriber = Subscriber.objects.get(email="nojs@example.org")
    assert subscriber.timezone == "UTC" and subscriber.status == Subscriber.Status.PENDING

    # A form error is shown next to its field, and focusable.
    page.goto(site + "/")
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Subscribe").click()
    assert page.get_by_role("alert").first.is_visible()
    assert page.get_by_label("Email address").get_attribute("aria-invalid") == "true"
    context.close()


def test_a_browser_zone_the_menu_does_not_list_is_still_filled_in(browser, site):
    """The menu lists canonical zones only; a browser may name its zone by an alias, which the
    script adds to the menu (the server accepts every IANA name)."""
    from subscriptions.selectors import timezone_menu, timezone_names

    for zone in ("Asia/Calcutta", "Europe/Kiev"):
        assert zone not in timezone_menu() and zone in timezone_names()
        context = browser.new_context(viewport=PHONE, timezone_id=zone)
        page = context.new_page()
        page.goto(site + "/")
        reported = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
        assert page.locator("select[name=timezone]").input_value() == reported, zone
        context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["script", "no-script"])
def test_a_refused_signup_puts_the_focus_on_its_error_summary(browser, site, javascript):
    """autofocus does it without the script; the script does it where a browser skips autofocus on a div,
    and makes a summary link show its field's label."""
    context = browser.new_context(viewport=PHONE, java_script_enabled=javascript)
    page = context.new_page()
    page.goto(site + "/")
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="There is a problem").wait_for()
    assert page.title().startswith("Error: ")
    assert page.locator(":focus").get_attribute("id") == "error-summary"
    page.screenshot(path=str(ARTIFACTS / f"signup-errors-phone-{'script' if javascript else 'no-script'}.png"))
    if javascript:
        page.get_by_role("link", name="Email address: Enter a valid email address.").click()
        assert page.locator(":focus").get_attribute("id") == "id_email"
        assert page.get_by_text("Email address", exact=True).is_visible()
        assert page.evaluate("document.querySelector('label[for=id_email]').getBoundingClientRect().top") >= 0
    context.close()


def _contrast(page, selector: str) -> float:
    """WCAG contrast of an element's text colour on its own background (both opaque rgb)."""
    return page.evaluate(
        """(selector) => {
          const el = document.querySelector(selector);
          const lum = (css, from) => {
            const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map(v => v / 255)
              .map(c => c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
            return 0.2126 * r + 0.7152 * g + 0.0722 * b;
          };
          const style = getComputedStyle(el);
          const background = getComputedStyle(el.closest('.chip')).backgroundColor;
          const [hi, lo] = [lum(style.color), lum(background)].sort((a, b) => b - a);
          return (hi + 0.05) / (lo + 0.05);
        }""",
        selector,
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_ticked_stop_following_chip_looks_unlike_a_followed_topic(browser, site, scheme):
    from subscriptions.links import manage_url
    from tests.factories import SubscriberFactory

    subscriber = SubscriberFactory()
    video, llms = Topic.objects.get(slug="video"), Topic.objects.get(slug="llms")
    subscriber.topics.set([video, llms])
    Topic.objects.filter(pk=video.pk).update(active=False)  # paused by the editors: "Stop following Video"
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, color_scheme=scheme)
    page = context.new_page()
    page.goto(manage_url(subscriber))
    stop = page.get_by_label("Stop following Video")

    def look(selector):
        return page.evaluate(
            """(selector) => { const label = document.querySelector(selector), style = getComputedStyle(label);
                 return [getComputedStyle(label.querySelector('span')).textDecorationLine, style.borderTopStyle,
                         style.borderTopColor]; }""",
            selector,
        )

    chip, followed = "label.chip--remove", "label.chip:has(input[value=llms])"
    assert page.get_by_label("Large language models").is_checked()
    assert look(chip)[:2] == ["none", "solid"]
    stop.check()
    decoration, border, colour = look(chip)
    assert (decoration, border) == ("line-through", "dashed")
    assert look(followed)[:2] == ["none", "solid"] and look(followed)[2] != colour  # a followed topic stays as it was
    assert _contrast(page, "label.chip--remove span") >= 4.5
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(ARTIFACTS / f"manage-stop-following-{scheme}.png"), full_page=True)
    stop.uncheck()
    assert look(chip)[:2] == ["none", "solid"]
    context.close()
