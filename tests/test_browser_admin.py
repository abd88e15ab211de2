"""Headless Chromium drives the admin as a curator and as an operator (Playwright + live_server).

Screenshots of the paper list, the edition preview and the health page go to tests/artifacts/.
"""

import datetime
import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from digest.models import Delivery, Edition, Paper, Topic, TrendingEntry, WebhookEvent
from subscriptions.models import Subscriber
from tests.browser_support import ARTIFACTS, CHROMIUM, chromium_launch
from tests.factories import PaperFactory, SubscriberFactory, TopicFactory, TrendingEntryFactory

PASSWORD = "correct horse battery staple"
READER = "reader.robotics@example.net"

pytestmark = [
    pytest.mark.browser,
    # live_server needs committed data; serialized_rollback puts back what migrations
    # created (roles, default topics) for the tests that run after these.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"headless Chromium not installed at {CHROMIUM}"),
]


@pytest.fixture
def page(live_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test
    # makes between browser steps are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = chromium_launch(p)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.base = live_server.url
        try:
            yield page
        finally:
            context.close()
            browser.close()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _staff(username: str, group: str) -> User:
    user = User.objects.create_user(username, f"{username}@paperboy.test", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def _login(page, user: User):
    page.goto(page.base + "/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def _run_action(page, action: str, labels: list[str]):
    """Tick the rows (by the object's full name) and run an admin action."""
    for label in labels:
        page.get_by_role("checkbox", name=f"Select this object for an action - {label}", exact=True).check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


@pytest.fixture
def newsroom(db, settings):
    # Lexical matching: loading the sentence model costs ~30 s per process, which the
    # client tests (tests/test_admin.py) already pay with the default method.
    settings.MATCHING_METHOD = "lexical"
    today = timezone.localdate()
    robotics = TopicFactory(name="Robot learning", slug="robot-learning-test", query="robot")
    titles = [
        ("Robot manipulation with diffusion policies", "Robot arms learn dexterous manipulation from demonstrations."),
        ("Scaling laws for protein language models", "We train protein models at scale."),
        ("Video generation with latent transformers", "A video diffusion model."),
        ("Video Generation with Latent Transformers, extended", "A video diffusion model, extended version."),
        ("Spam paper about crypto coins", "Buy now."),
    ]
    papers = []
    for rank, (title, abstract) in enumerate(titles, start=1):
        paper = PaperFactory(title=title, abstract=abstract, upvotes=100 - rank)
        TrendingEntryFactory(paper=paper, date=today, rank=rank, source="hf")
        papers.append(paper)
    edition = Edition.objects.create(date=today)
    reader = SubscriberFactory(email=READER, interests="robot learning, manipulation")
    reader.topics.add(robotics)
    return {"today": today, "papers": papers, "edition": edition, "reader": reader, "topic": robotics}


def test_a_curator_searches_pins_hides_merges_edits_a_topic_and_previews_and_tests_an_edition(
    page, newsroom, smtp_sink
):
    curator = _staff("curator", "curators")
    _login(page, curator)

    # Search and pin.
    page.goto(page.base + "/admin/digest/paper/")
    page.fill("#searchbar", "manipulation")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list >> text=Robot manipulation with diffusion policies")
    assert page.locator("#result_list tbody tr").count() == 1
    _run_action(page, "pin", ["Robot manipulation with diffusion policies"])
    page.wait_for_selector(".messagelist >> text=1 paper pinned")
    assert Paper.objects.get(title__startswith="Robot manipulation").pinned

    # Hide one.
    page.goto(page.base + "/admin/digest/paper/")
    _run_action(page, "hide", ["Spam paper about crypto coins"])
    page.wait_for_selector(".messagelist >> text=Hid 1 paper;")
    assert Paper.objects.get(title__startswith="Spam paper").hidden

    # Merge two: the confirmation page asks which to keep.
    _run_action(page, "merge", ["Video generation with latent transformers", "Video Generation with Latent Transformers, extended"])
    page.wait_for_selector("text=Choose the record to keep")
    keep = Paper.objects.get(title="Video generation with latent transformers")
    page.check(f"#keep-{keep.pk}")
    page.click("text=Merge into the chosen paper")
    page.wait_for_selector(".messagelist >> text=Merged 1 duplicate into")
    assert not Paper.objects.filter(title__endswith="extended").exists()
    assert TrendingEntry.objects.filter(paper=keep).count() == 1  # same day and source: combined

    page.goto(page.base + "/admin/digest/paper/?trending=today")
    page.wait_for_selector("#result_list")
    page.screenshot(path=str(ARTIFACTS / "admin-paper-list.png"), full_page=True)

    # Edit a topic's query and see the preview before saving.
    topic = newsroom["topic"]
    page.goto(page.base + f"/admin/digest/topic/{topic.pk}/change/")
    page.fill("#id_query", '"protein language models", protein')
    page.wait_for_selector("#topic-preview-results li >> text=Scaling laws for protein language models")
    assert "Robot manipulation" not in page.inner_text("#topic-preview-results")
    assert Topic.objects.get(pk=topic.pk).query == "robot"  # not saved yet
    page.fill("#id_query", "robot, manipulation")
    page.wait_for_selector("#topic-preview-results li >> text=Robot manipulation with diffusion policies")
    page.screenshot(path=str(ARTIFACTS / "admin-topic-preview.png"), full_page=True)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    assert Topic.objects.get(pk=topic.pk).query == "robot, manipulation"

    # Preview the edition as a subscriber, then send a test to me.
    edition, reader = newsroom["edition"], newsroom["reader"]
    page.goto(page.base + f"/admin/digest/edition/{edition.pk}/change/")
    page.wait_for_selector("#edition-papers >> text=pinned")
    page.screenshot(path=str(ARTIFACTS / "admin-edition.png"), full_page=True)
    page.click("text=Preview as a subscriber / send a test")
    page.select_option("#id_subscriber", str(reader.pk))
    page.click("input[value='Show preview']")
    page.wait_for_selector("#preview-subject")
    text = page.inner_text("#preview-text")
    assert "Robot manipulation with diffusion policies" in text
    assert READER not in page.content()  # a curator never sees the address
    frame = page.frame_locator("#preview-html")
    frame.locator("a", has_text="Robot manipulation with diffusion policies").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "admin-edition-preview.png"), full_page=True)

    page.click("#send-test")
    page.wait_for_selector(".messagelist >> text=Sent a [TEST] copy")
    [message] = smtp_sink.to(curator.email)
    assert message.subject.strip().startswith("[TEST] ")  # (a folded encoded header may parse with a leading space)
    assert "Robot manipulation with diffusion policies" in message.part("text/plain")
    assert not smtp_sink.to(READER)
    assert not Delivery.objects.exists()
    assert not reader.sent_papers.exists()

    # And the subscriber pages are closed to a curator, even by URL.
    response = page.goto(page.base + f"/admin/subscriptions/subscriber/{reader.pk}/change/")
    assert response.status == 403


def test_an_operator_watches_sending_health_and_previews_with_the_address(page, newsroom):
    operator = _staff("operator", "operators")
    now = timezone.now()
    edition, reader = newsroom["edition"], newsroom["reader"]
    others = SubscriberFactory.create_batch(299)
    Delivery.objects.bulk_create(
        [Delivery(edition=edition, subscriber=s, state=Delivery.State.SENT, sent_at=now) for s in others[:250]]
        + [Delivery(edition=edition, subscriber=s) for s in others[250:]]
    )
    WebhookEvent.objects.create(event_id="complaint-1", event_type=WebhookEvent.Kind.COMPLAINT, occurred_at=now)  # 1/250 = 0.4%
    yesterday = Edition.objects.create(date=newsroom["today"] - datetime.timedelta(days=1), status=Edition.Status.HELD,
                                       hold_reason="complaints 1/250 sent (0.40%)")  # fmt: skip

    _login(page, operator)
    page.click("#user-tools >> text=Sending health")
    page.wait_for_selector("#health-progress >> text=250 / 299")
    assert "the next edition will be held" in page.inner_text("#content-main")
    page.screenshot(path=str(ARTIFACTS / "admin-health.png"), full_page=True)

    # Release the held edition.
    page.goto(page.base + "/admin/digest/edition/?status__exact=held")
    _run_action(page, "release", [str(yesterday)])
    page.wait_for_selector(".messagelist >> text=Released 1 edition;")
    assert Edition.objects.get(pk=yesterday.pk).status == Edition.Status.DRAFT

    # Operators see addresses: in the subscriber list and in the preview.
    page.goto(page.base + "/admin/subscriptions/subscriber/?q=reader.robotics")
    page.wait_for_selector(f"#result_list >> text={READER}")
    page.goto(page.base + f"/admin/digest/edition/{edition.pk}/preview/?subscriber={reader.pk}")
    page.wait_for_selector("#preview-subject")
    assert READER in page.inner_text("#preview-meta")
