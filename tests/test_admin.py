"""The admin as curators and operators use it: roles, pages and actions (through the test client)."""

import datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from digest.models import Delivery, Edition, Paper, PaperTopic, SentPaper, Topic, TrendingEntry, WebhookEvent
from subscriptions import services as subscription_services
from subscriptions.models import SignupConsent, Subscriber, Suppression
from tests.admin_support import curator, curator_client, operator, operator_client, subscriber_form_data  # noqa: F401
from tests.factories import PaperFactory, SubscriberFactory, TopicFactory, TrendingEntryFactory

pytestmark = pytest.mark.django_db

SECRET_ADDRESS = "very.private.reader@example.net"
DEMO = Path(__file__).resolve().parent.parent / "demo"


def _action(client, model: str, action: str, ids, **extra):
    return client.post(
        reverse(f"admin:digest_{model}_changelist"),
        {"action": action, "_selected_action": [str(i) for i in ids], **extra},
        follow=True,
    )


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- roles ----------------------------------------------------------------


def test_the_roles_migration_gives_curators_curation_and_operators_everything():
    curators = set(Group.objects.get(name="curators").permissions.values_list("content_type__model", "codename"))
    operators = set(Group.objects.get(name="operators").permissions.values_list("content_type__model", "codename"))
    assert ("paper", "change_paper") in curators
    assert ("topic", "change_topic") in curators
    assert ("edition", "change_edition") in curators
    assert ("papertopic", "add_papertopic") in curators
    assert not {m for m, _ in curators} & {"subscriber", "suppression", "delivery", "sentpaper", "webhookevent"}
    assert ("edition", "release_edition") not in curators
    assert {("subscriber", "view_subscriber"), ("delivery", "change_delivery"), ("edition", "release_edition"),
            ("edition", "view_sending_health")} <= operators  # fmt: skip


@pytest.fixture
def private_records(db):
    subscriber = SubscriberFactory(email=SECRET_ADDRESS, status=Subscriber.Status.CONFIRMED)
    edition = Edition.objects.create(date=datetime.date(2026, 11, 20))
    delivery = Delivery.objects.create(edition=edition, subscriber=subscriber, state=Delivery.State.FAILED,
                                       last_error="550 mailbox unavailable")  # fmt: skip
    paper = PaperFactory()
    sent = SentPaper.objects.create(subscriber=subscriber, paper=paper, delivery=delivery, sent_on=edition.date)
    suppression = Suppression.objects.create(email=SECRET_ADDRESS, reason="complaint")
    event = WebhookEvent.objects.create(event_id="e1", event_type=WebhookEvent.Kind.COMPLAINT, recipient=SECRET_ADDRESS)
    consent = SignupConsent.objects.create(subscriber=subscriber, signup_at=timezone.now(), signup_ip="198.51.100.66")
    return {"subscriber": subscriber, "delivery": delivery, "sent": sent, "suppression": suppression,
            "event": event, "edition": edition, "paper": paper, "consent": consent}  # fmt: skip


def _address_urls(r):
    urls = []
    for name, obj in (
        ("subscriptions_subscriber", r["subscriber"]),
        ("subscriptions_suppression", r["suppression"]),
        ("subscriptions_signupconsent", r["consent"]),
        ("digest_delivery", r["delivery"]),
        ("digest_sentpaper", r["sent"]),
        ("digest_webhookevent", r["event"]),
    ):
        urls += [
            reverse(f"admin:{name}_changelist"),
            reverse(f"admin:{name}_changelist") + "?_popup=1&_to_field=id",
            reverse(f"admin:{name}_change", args=[obj.pk]),
            reverse(f"admin:{name}_history", args=[obj.pk]),
            reverse(f"admin:{name}_delete", args=[obj.pk]),
        ]
    for model, field in (("delivery", "subscriber"), ("sentpaper", "subscriber")):
        urls.append(f"{reverse('admin:autocomplete')}?app_label=digest&model_name={model}&field_name={field}&term=very")
    urls.append(reverse("admin:digest_sending_health"))
    return urls


def test_a_curator_cannot_reach_a_subscriber_address_through_any_admin_url(curator_client, private_records):
    for url in _address_urls(private_records):
        response = curator_client.get(url)
        assert response.status_code == 403, url
        assert SECRET_ADDRESS not in response.content.decode(), url


def test_pages_a_curator_can_open_never_show_an_address(curator_client, private_records):
    r = private_records
    pages = [
        reverse("admin:index"),
        reverse("admin:digest_paper_changelist"),
        reverse("admin:digest_paper_change", args=[r["paper"].pk]),
        reverse("admin:digest_paper_history", args=[r["paper"].pk]),
        reverse("admin:digest_edition_changelist"),
        reverse("admin:digest_edition_change", args=[r["edition"].pk]),
        reverse("admin:digest_edition_preview", args=[r["edition"].pk]),
        reverse("admin:digest_topic_changelist"),
    ]
    for url in pages:
        response = curator_client.get(url)
        assert response.status_code == 200, url
        assert SECRET_ADDRESS not in response.content.decode(), url
    assert "Subscribers" not in curator_client.get(reverse("admin:index")).content.decode()


def test_an_operator_sees_subscribers_deliveries_and_health(operator_client, private_records):
    for url in _address_urls(private_records):
        if "autocomplete" in url:
            continue  # raw-id fields there, no autocomplete: 403 for everyone is right
        read_only = ("/digest/delivery/", "/digest/sentpaper/", "/subscriptions/signupconsent/")
        ledger_delete = url.endswith("/delete/") and any(part in url for part in read_only)
        assert operator_client.get(url).status_code == (403 if ledger_delete else 200), url  # ledgers: read only
    page = operator_client.get(reverse("admin:subscriptions_subscriber_changelist")).content.decode()
    assert SECRET_ADDRESS in page


def test_the_subscriber_page_shows_consent_and_deliveries_but_never_the_token(operator_client):
    subscriber = SubscriberFactory(signup_ip="203.0.113.9", signup_user_agent="Firefox/140", signup_source="web")
    edition = Edition.objects.create(date=datetime.date(2026, 11, 19))
    Delivery.objects.create(edition=edition, subscriber=subscriber, state=Delivery.State.SENT)
    page = operator_client.get(reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])).content.decode()
    assert "203.0.113.9" in page and "Firefox/140" in page
    assert "Consent evidence" in page
    assert "Nov. 19, 2026" in page or "2026-11-19" in page
    assert subscriber.token_key not in page
    assert 'name="signup_ip"' not in page  # read-only, not an input


# --- papers ---------------------------------------------------------------


def test_paper_search_finds_by_title_abstract_author_and_any_form_of_arxiv_id(curator_client):
    target = PaperFactory(title="Diffusion for robot grasping", abstract="We study zebrafish locomotion.",
                          authors=["Grace Hopper"], arxiv_id="2411.01234")  # fmt: skip
    PaperFactory.create_batch(3)
    url = reverse("admin:digest_paper_changelist")
    for term in ("robot grasping", "zebrafish", "Hopper", "2411.01234", "2411.01234v3",
                 "https://arxiv.org/abs/2411.01234v2", "https://arxiv.org/pdf/2411.01234v1.pdf",
                 "https://huggingface.co/papers/2411.01234"):  # fmt: skip
        results = list(curator_client.get(url, {"q": term}).context["cl"].result_list)
        assert [p.pk for p in results] == [target.pk], term
    old_style = PaperFactory(arxiv_id="hep-th/9901001")
    for term in ("hep-th/9901001", "https://arxiv.org/abs/hep-th/9901001v2", "arXiv:hep-th/9901001"):
        results = list(curator_client.get(url, {"q": term}).context["cl"].result_list)
        assert [p.pk for p in results] == [old_style.pk], term


def test_paper_list_filters_by_trending_date_topic_source_and_flags(curator_client):
    today = timezone.localdate()
    fresh = TrendingEntryFactory(date=today, source="hf").paper
    old = TrendingEntryFactory(date=today - datetime.timedelta(days=20), source="arxiv").paper
    topic = TopicFactory(name="Robotics")
    PaperTopic.objects.create(paper=old, topic=topic, score=0.0, override=True)
    PaperTopic.objects.create(paper=fresh, topic=topic, score=0.9, override=False)  # override wins
    fresh.pinned = True
    fresh.save()
    url = reverse("admin:digest_paper_changelist")

    def ids(**params):
        return {p.pk for p in curator_client.get(url, params).context["cl"].result_list}

    assert ids(trending="today") == {fresh.pk}
    assert ids(trending="30d") == {fresh.pk, old.pk}
    assert ids(topic=topic.pk) == {old.pk}
    assert ids(source="arxiv") == {old.pk}
    assert ids(pinned__exact=1) == {fresh.pk}


@pytest.mark.parametrize("value", ["garbage", "99999999999999999999", "-1", "1.5", "٣"])
def test_a_topic_filter_value_that_is_no_topic_lists_no_papers_instead_of_failing(curator_client, value):
    PaperTopic.objects.create(paper=PaperFactory(), topic=TopicFactory(), score=0.9)
    response = curator_client.get(reverse("admin:digest_paper_changelist"), {"topic": value})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize(
    "model, params",
    [
        ("paper", {"trending": "garbage"}),
        ("paper", {"trending": "2026-13-45"}),
        ("paper", {"source": "99999999999999999999"}),
        ("paper", {"pinned__exact": "garbage"}),
        ("delivery", {"failure": "garbage"}),
        ("delivery", {"edition__id__exact": "99999999999999999999"}),
    ],
)
def test_no_list_filter_value_makes_the_admin_fail(operator_client, model, params):
    PaperFactory()
    response = operator_client.get(reverse(f"admin:digest_{model}_changelist"), params)
    assert response.status_code in (200, 302)


def test_paper_list_shows_date_rank_upvotes_and_topics(curator_client):
    entry = TrendingEntryFactory(date=datetime.date(2026, 11, 20), rank=3)
    entry.paper.upvotes = 321
    entry.paper.save()
    PaperTopic.objects.create(paper=entry.paper, topic=TopicFactory(name="Video generation"), score=0.8)
    page = curator_client.get(reverse("admin:digest_paper_changelist")).content.decode()
    assert "Nov. 20, 2026" in page and "#3" in page and "321" in page and "Video generation" in page


def test_paper_list_never_shows_an_arxiv_feed_position_as_a_trending_rank(curator_client):
    day = datetime.date(2026, 11, 20)
    hf = TrendingEntryFactory(date=day, rank=5, source=TrendingEntry.Source.HF, paper__title="Seen on HF and arXiv")
    TrendingEntryFactory(paper=hf.paper, date=day, rank=2, source=TrendingEntry.Source.ARXIV)
    only_arxiv = TrendingEntryFactory(date=day, rank=3, source=TrendingEntry.Source.ARXIV, paper__title="Only on arXiv")
    response = curator_client.get(reverse("admin:digest_paper_changelist"))
    assert response.status_code == 200
    rows = {paper.pk: paper for paper in response.context["cl"].result_list}
    admin_ = response.context["cl"].model_admin
    assert admin_.rank_column(rows[hf.paper_id]) == "#5"
    assert admin_.rank_column(rows[only_arxiv.paper_id]) == "new on arXiv"
    assert "new on arXiv" in response.content.decode()


def test_pin_and_hide_actions_change_the_papers_and_say_so(curator_client):
    a, b = PaperFactory.create_batch(2)
    response = _action(curator_client, "paper", "pin", [a.pk])
    assert "1 paper pinned; it goes first" in _messages(response)[0]
    response = _action(curator_client, "paper", "hide", [b.pk])
    assert "Hid 1 paper;" in _messages(response)[0]
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.pinned and b.hidden


# --- pinning and hiding on the paper's own page ---------------------------------------


def _paper_form_data(client, paper, **changes):
    url = reverse("admin:digest_paper_change", args=[paper.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("authors", "keywords", "categories")}
    data.update({
        "authors": '["Ada Lovelace"]', "keywords": "[]", "categories": "[]",
        "topic_scores-TOTAL_FORMS": "0", "topic_scores-INITIAL_FORMS": "0",
        "trending-TOTAL_FORMS": "0", "trending-INITIAL_FORMS": "0",
    })  # fmt: skip
    data.update(changes)
    return url, {k: ("on" if v is True else v) for k, v in data.items() if v is not False}


def test_ticking_pinned_on_the_paper_page_puts_it_first_in_the_edition_being_sent(curator_client):
    a, b, paper = PaperFactory.create_batch(3)
    edition = Edition.objects.create(date=datetime.date(2026, 11, 20), paper_ids=[a.pk, b.pk], status="sending")
    url, data = _paper_form_data(curator_client, paper, pinned=True)
    assert curator_client.post(url, data).status_code == 302
    paper.refresh_from_db()
    edition.refresh_from_db()
    assert paper.pinned
    assert edition.paper_ids == [paper.pk, a.pk, b.pk]


def test_ticking_hidden_on_the_paper_page_drops_it_from_an_edition_not_yet_sending(curator_client):
    a, paper = PaperFactory.create_batch(2)
    paper.pinned = True
    paper.save()
    edition = Edition.objects.create(date=datetime.date(2026, 11, 20), paper_ids=[paper.pk, a.pk])
    url, data = _paper_form_data(curator_client, paper, pinned=False, hidden=True)
    assert curator_client.post(url, data).status_code == 302
    paper.refresh_from_db()
    edition.refresh_from_db()
    assert paper.hidden and not paper.pinned
    assert edition.paper_ids == [a.pk]


def test_a_paper_form_that_pins_and_hides_at_once_is_refused_and_changes_nothing(curator_client):
    paper = PaperFactory()
    edition = Edition.objects.create(date=datetime.date(2026, 11, 20), paper_ids=[paper.pk])
    url, data = _paper_form_data(curator_client, paper, pinned=True, hidden=True)
    response = curator_client.post(url, data)
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.non_field_errors())
    assert "Pinned" in errors and "Hidden" in errors
    paper.refresh_from_db()
    edition.refresh_from_db()
    assert not paper.pinned and not paper.hidden and edition.paper_ids == [paper.pk]


def test_pinning_a_paper_already_pinned_says_it_moved_it_to_the_front_again(curator_client):
    a, paper = PaperFactory.create_batch(2)
    paper.pinned = True
    paper.save()
    edition = Edition.objects.create(date=datetime.date(2026, 11, 20), paper_ids=[a.pk, paper.pk])
    [message] = _messages(_action(curator_client, "paper", "pin", [paper.pk]))
    assert "Pinned 0" not in message
    assert "1 paper pinned (it already was); it goes first" in message
    edition.refresh_from_db()
    assert edition.paper_ids == [paper.pk, a.pk]


def test_merge_asks_which_paper_to_keep_then_merges(curator_client):
    keep = PaperFactory(title="Sparse cats", arxiv_id="2411.00007")
    dup = PaperFactory(title="Sparse cats (HF)", arxiv_id=None)
    TrendingEntryFactory(paper=dup, source="hf")
    confirm = _action(curator_client, "paper", "merge", [keep.pk, dup.pk])
    assert "Merge duplicate papers" in confirm.content.decode()
    assert confirm.context["form"].initial["keep"] == keep
    assert "look unrelated" not in confirm.content.decode()  # the same paper from another source
    done = _action(curator_client, "paper", "merge", [keep.pk, dup.pk], apply="1", keep=str(keep.pk))
    assert "Merged 1 duplicate into" in _messages(done)[0]
    assert list(Paper.objects.values_list("pk", flat=True)) == [keep.pk]
    assert TrendingEntry.objects.get().paper_id == keep.pk


def test_a_hidden_paper_merged_with_a_pinned_copy_stays_hidden_says_so_and_saves_again(curator_client):
    """The merge left it pinned and hidden, and its page then refused every save."""
    keep = PaperFactory(title="Sparse cats", arxiv_id="2411.00007", hidden=True)
    dup = PaperFactory(title="Sparse cats (HF)", arxiv_id=None, pinned=True)
    done = _action(curator_client, "paper", "merge", [keep.pk, dup.pk], apply="1", keep=str(keep.pk))
    assert "It stays hidden, so it is not pinned" in _messages(done)[0]
    keep.refresh_from_db()
    assert keep.hidden and not keep.pinned
    url, data = _paper_form_data(curator_client, keep, title="Sparse cats, retitled")
    assert curator_client.post(url, data).status_code == 302
    assert Paper.objects.get(pk=keep.pk).title == "Sparse cats, retitled"


def test_merging_papers_with_unrelated_titles_warns_before_it_is_done(curator_client):
    """A merge cannot be undone, and QA merged two unrelated papers without a word from the page."""
    keep = PaperFactory(title="Sparse cats", arxiv_id="2411.00007")
    other = PaperFactory(title="Dense Retrieval for Legal Question Answering", arxiv_id=None)
    page = _action(curator_client, "paper", "merge", [keep.pk, other.pk]).content.decode()
    assert "These titles look unrelated to “Sparse cats”" in page and "Dense Retrieval for Legal" in page
    assert Paper.objects.count() == 2  # only a warning: the curator decides


def test_a_curator_sets_a_papers_topic_by_hand_through_the_inline(curator_client):
    paper = PaperFactory()
    topic = TopicFactory(name="Robotics")
    url = reverse("admin:digest_paper_change", args=[paper.pk])
    form = curator_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("authors", "keywords", "categories")}
    data.update({
        "authors": '["Ada Lovelace"]', "keywords": "[]", "categories": "[]",
        "topic_scores-TOTAL_FORMS": "1", "topic_scores-INITIAL_FORMS": "0",
        "topic_scores-0-topic": str(topic.pk), "topic_scores-0-override": "true",
        "trending-TOTAL_FORMS": "0", "trending-INITIAL_FORMS": "0",
    })  # fmt: skip
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    response = curator_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert PaperTopic.objects.get(paper=paper, topic=topic).override is True


def test_uploading_a_paper_file_imports_it_like_import_papers(curator_client):
    with open(DEMO / "trending-page-mar-12.txt", "rb") as fh:
        response = curator_client.post(reverse("admin:digest_paper_upload"), {"file": fh, "format": "auto"}, follow=True)
    assert "Uploaded trending-page-mar-12.txt: 87 papers:" in _messages(response)[0]
    # Shown as uploaded: the admin's capfirst must not make it "Trending-page-mar-12.txt".
    assert "Uploaded trending-page-mar-12.txt: 87 papers:" in response.content.decode()
    assert Paper.objects.count() == 87


def test_a_bad_upload_shows_the_importers_message_and_keeps_nothing(curator_client, tmp_path):
    text = (DEMO / "trending-page-mar-12.txt").read_bytes()
    bad = tmp_path / "truncated.txt"
    bad.write_bytes(text[: text.index(b"Data-Centric Human Preference") + 20])
    with open(bad, "rb") as fh:
        response = curator_client.post(reverse("admin:digest_paper_upload"), {"file": fh, "format": "auto"})
    assert response.status_code == 200
    errors = response.context["form"].errors["file"]
    assert errors[0].startswith("truncated.txt: line 355: title 'Data-Centric Human P' has no abstract")
    assert Paper.objects.count() == 0 and TrendingEntry.objects.count() == 0


# --- topics ---------------------------------------------------------------


def test_topic_list_counts_subscribers(curator_client):
    topic = TopicFactory(name="Robotics")
    for s in SubscriberFactory.create_batch(3):
        s.topics.add(topic)
    cl = curator_client.get(reverse("admin:digest_topic_changelist")).context["cl"]
    assert {t.name: t.n_subscribers for t in cl.result_list}["Robotics"] == 3


def _followed_topic(name="Robotics", readers=5):
    topic = TopicFactory(name=name)
    for s in SubscriberFactory.create_batch(readers, interests="", status=Subscriber.Status.CONFIRMED):
        s.topics.add(topic)
    return topic


def test_a_topic_that_readers_follow_cannot_be_deleted_and_the_page_points_to_active(curator_client):
    topic = _followed_topic()
    url = reverse("admin:digest_topic_delete", args=[topic.pk])
    page = " ".join(curator_client.get(url).content.decode().split())
    assert "5 readers follow this topic" in page and "“active”" in page
    response = curator_client.post(url, {"post": "yes"})
    assert response.status_code in (200, 403)
    assert Topic.objects.filter(pk=topic.pk).exists()
    assert topic.subscribers.count() == 5


def test_delete_selected_refuses_topics_that_readers_follow(curator_client):
    followed = _followed_topic()
    pending = TopicFactory(name="Pending readers")
    SubscriberFactory(status=Subscriber.Status.PENDING).topics.add(pending)
    unfollowed = TopicFactory(name="Nobody")
    SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED).topics.add(unfollowed)
    ids = [followed.pk, pending.pk, unfollowed.pk]
    response = _action(curator_client, "topic", "delete_selected", ids, post="yes")
    assert set(Topic.objects.filter(pk__in=ids).values_list("pk", flat=True)) == set(ids)
    assert "readers follow this topic" in " ".join(response.content.decode().split())
    # A topic only former readers had goes as before.
    _action(curator_client, "topic", "delete_selected", [unfollowed.pk], post="yes")
    assert not Topic.objects.filter(pk=unfollowed.pk).exists()


def test_deactivating_a_followed_topic_says_who_is_left_with_nothing_to_match(curator_client):
    topic = _followed_topic(readers=2)
    other = TopicFactory(name="Vision")
    keeps = SubscriberFactory(status=Subscriber.Status.CONFIRMED, interests="")
    keeps.topics.add(topic, other)
    url = reverse("admin:digest_topic_change", args=[topic.pk])
    data = {"name": topic.name, "slug": topic.slug, "description": topic.description, "query": topic.query,
            "position": topic.position}  # fmt: skip  (active unticked)
    response = curator_client.post(url, data, follow=True)
    topic.refresh_from_db()
    assert not topic.active
    text = " ".join(_messages(response))
    assert "3 readers follow" in text and "2 of them" in text and "trending" in text


@pytest.mark.parametrize(
    "query, error",
    [('robot, "robot learning', "A quote is not closed"),
     ("robot, “robot learning", "A quote is not closed"),
     ('"", ,', "This query has no word to match")],
)  # fmt: skip
def test_a_topic_query_with_an_open_quote_or_no_word_is_said_back_and_not_saved(curator_client, query, error):
    topic = TopicFactory(name="Robotics", query="robot")
    url = reverse("admin:digest_topic_change", args=[topic.pk])
    data = {"name": topic.name, "slug": topic.slug, "description": "", "query": query, "active": "on", "position": 0}
    response = curator_client.post(url, data)
    assert response.status_code == 200
    assert error in response.content.decode()
    topic.refresh_from_db()
    assert topic.query == "robot"


def test_an_empty_topic_query_is_allowed_and_matches_by_the_topic_name(curator_client):
    topic = TopicFactory(name="Robotics", query="robot")
    url = reverse("admin:digest_topic_change", args=[topic.pk])
    data = {"name": topic.name, "slug": topic.slug, "description": "", "query": "", "active": "on", "position": 0}
    assert curator_client.post(url, data).status_code == 302
    topic.refresh_from_db()
    assert topic.query == ""


def test_topic_query_preview_ranks_recent_papers_without_saving(curator_client):
    topic = TopicFactory(name="Robotics", query="robot")
    hit = TrendingEntryFactory(paper=PaperFactory(title="Robot manipulation with diffusion policies",
                                                  abstract="Robot arms learn manipulation.")).paper  # fmt: skip
    TrendingEntryFactory(paper=PaperFactory(title="Protein folding at scale", abstract="Biology."))
    response = curator_client.get(reverse("admin:digest_topic_preview"), {"query": 'manipulation, "robot arms"'})
    data = response.json()
    assert data["candidates"] == 2
    assert [p["id"] for p in data["papers"]] == [hit.pk]
    assert data["papers"][0]["matches"] is True
    topic.refresh_from_db()
    assert topic.query == "robot"


def test_topic_preview_falls_back_to_the_latest_trending_days_and_says_so(curator_client):
    """The demo's papers trended in March and April: months before today, and still previewed."""
    latest = timezone.localdate() - datetime.timedelta(days=200)
    hit = TrendingEntryFactory(date=latest, paper=PaperFactory(title="Robot arms that fold laundry",
                                                               abstract="Robot manipulation.")).paper  # fmt: skip
    TrendingEntryFactory(date=latest - datetime.timedelta(days=30), paper=PaperFactory(title="Older robot paper"))
    data = curator_client.get(reverse("admin:digest_topic_preview"), {"query": "robot"}).json()
    assert [p["id"] for p in data["papers"]] == [hit.pk]
    assert data["candidates"] == 1 and data["end"] == latest.isoformat()
    assert f"the 14 days to {latest:%-d %b %Y}, the latest with trending papers" in data["window"]


def test_topic_preview_without_any_trending_papers_scores_every_paper(curator_client):
    hit = PaperFactory(title="Robot arms that fold laundry", abstract="Robot manipulation.")
    data = curator_client.get(reverse("admin:digest_topic_preview"), {"query": "robot"}).json()
    assert [p["id"] for p in data["papers"]] == [hit.pk]
    assert data["window"] == "all papers (none has trended yet)"


TOPIC_PAPERS = [
    ("Robot manipulation with diffusion policies", "Robot arms learn dexterous manipulation from demonstrations."),
    ("Grasping in clutter", "A robot picks objects with a learned grasp planner."),
    ("Legged locomotion by reinforcement learning", "Quadruped control policies trained in simulation."),
    ("Vision transformers for segmentation", "Dense prediction with transformers on images."),
    ("Language models that plan", "Planning with large language models for agents and manipulation of tools."),
    ("Protein folding at scale", "Biology meets deep learning."),
    ("Sim-to-real transfer for robot learning", "Domain randomization closes the reality gap for robots."),
    ("Efficient attention kernels", "Faster transformers on GPUs."),
]


@pytest.mark.parametrize("method", ["lexical", "hybrid"])
def test_topic_preview_matches_exactly_what_saving_the_edited_query_lists(curator_client, settings, method):
    from digest.matching import semantic
    from digest.services import classify

    if method == "hybrid" and not semantic.available():
        pytest.skip("the semantic extra (torch) is not installed")
    settings.MATCHING_METHOD = method
    topic = TopicFactory(name="Robotics", description="Robots that sense and act", query="robot")
    papers = [TrendingEntryFactory(paper=PaperFactory(title=t, abstract=a)).paper for t, a in TOPIC_PAPERS]
    PaperFactory.create_batch(5)  # background, never trending
    classify.papers_classify(paper_ids=[p.pk for p in Paper.objects.all()])  # as the worker did at import
    edited = 'manipulation, grasp, "robot learning", locomotion'

    preview = curator_client.get(
        reverse("admin:digest_topic_preview"),
        {"query": edited, "name": topic.name, "description": topic.description},
    ).json()
    assert preview["method"] == method and not preview["fallback"]
    assert method in preview["scorer"]
    previewed = {p["id"] for p in preview["papers"] if p["matches"]}

    topic.query = edited
    topic.save()
    classify.topic_reclassify(topic_id=topic.pk)  # what the save queues on the matching worker
    listed = curator_client.get(reverse("admin:digest_paper_changelist"), {"topic": str(topic.pk)}).context["cl"]
    assert previewed == {p.pk for p in listed.result_list} & {p.pk for p in papers}
    assert previewed and preview["matching"] == len(previewed)


def test_topic_preview_in_a_hybrid_site_without_the_topics_vector_scores_by_words_and_says_so(curator_client, settings):
    from digest.matching import semantic

    if not semantic.available():
        pytest.skip("the semantic extra (torch) is not installed")
    settings.MATCHING_METHOD = "hybrid"
    TrendingEntryFactory(paper=PaperFactory(title="Robot arms", abstract="Robot manipulation.", embedding=b"\0" * 3072))
    data = curator_client.get(
        reverse("admin:digest_topic_preview"), {"query": "robot", "name": "A brand new name", "description": "never seen"}
    ).json()
    assert data["method"] == "lexical" and "lexical" in data["scorer"]
    assert "no stored vector" in data["fallback"]


def test_topic_preview_is_for_staff_who_may_edit_topics(client, db):
    assert client.get(reverse("admin:digest_topic_preview"), {"query": "x"}).status_code == 302  # to login


# --- editions and health -------------------------------------------------


def test_edition_page_lists_the_papers_in_order_with_pins_first(curator_client):
    day = datetime.date(2026, 11, 20)
    first = TrendingEntryFactory(date=day, rank=1).paper
    pinned = TrendingEntryFactory(date=day, rank=9).paper
    pinned.pinned = True
    pinned.save()
    hidden = TrendingEntryFactory(date=day, rank=2).paper
    hidden.hidden = True
    hidden.save()
    edition = Edition.objects.create(date=day)
    response = curator_client.get(reverse("admin:digest_edition_change", args=[edition.pk]))
    assert [p.pk for p in response.context["edition_papers"]] == [pinned.pk, first.pk]
    assert "pinned" in response.content.decode()


def test_the_editions_list_counts_the_papers_the_edition_page_shows_in_the_same_queries_for_many(
    curator_client, django_assert_num_queries
):
    """It counted hidden papers ("11" where the page says 9), and one query per row would grow with the list."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from digest.services import curation
    from digest.services.editions import edition_freeze
    from tests.digest_support import trending_day

    day = datetime.date(2026, 11, 20)
    papers = trending_day(day=day, count=11)
    edition_freeze(day=day)
    curation.papers_hide(paper_ids=[papers[0].pk, papers[5].pk])
    url = reverse("admin:digest_edition_changelist")
    with CaptureQueriesContext(connection) as one:
        response = curator_client.get(url)
    assert '<td class="field-paper_total">9</td>' in response.content.decode()
    for offset in range(1, 15):
        trending_day(day=day - datetime.timedelta(days=offset), count=2)
        edition_freeze(day=day - datetime.timedelta(days=offset))
    with django_assert_num_queries(len(one)):
        assert curator_client.get(url).status_code == 200


def test_operators_release_a_held_edition_and_curators_cannot(curator_client, operator, private_records):
    edition = private_records["edition"]
    edition.status = Edition.Status.HELD
    edition.save()
    changelist = curator_client.get(reverse("admin:digest_edition_changelist"))
    action_form = changelist.context["action_form"]
    assert action_form is None or "release" not in dict(action_form.fields["action"].choices)
    _action(curator_client, "edition", "release", [edition.pk])
    assert Edition.objects.get(pk=edition.pk).status == Edition.Status.HELD
    curator_client.force_login(operator)
    response = _action(curator_client, "edition", "release", [edition.pk])
    assert "Released 1 edition; it goes out" in _messages(response)[0]
    edition.refresh_from_db()
    assert edition.status == Edition.Status.DRAFT and edition.released_at


def test_the_health_page_shows_progress_and_warns_on_complaints(operator_client):
    now = timezone.now()
    edition = Edition.objects.create(date=timezone.localdate(), status=Edition.Status.SENDING)
    subscribers = SubscriberFactory.create_batch(500)
    Delivery.objects.bulk_create(
        [Delivery(edition=edition, subscriber=s, state=Delivery.State.SENT, sent_at=now) for s in subscribers[:400]]
        + [Delivery(edition=edition, subscriber=s) for s in subscribers[400:]]
    )
    WebhookEvent.objects.create(event_id="c1", event_type=WebhookEvent.Kind.COMPLAINT, occurred_at=now)  # 1/400 = 0.25%
    page = operator_client.get(reverse("admin:digest_sending_health")).content.decode()
    assert "400 / 500" in page
    assert "Complaint rate 0.25% over 7 days is above 0.1%" in page
    assert "the next edition will be held" not in page


# --- deliveries and subscribers -----------------------------------------


def test_delivery_list_counts_by_state_and_shows_the_providers_reason(operator_client, private_records):
    response = operator_client.get(reverse("admin:digest_delivery_changelist"),
                                   {"edition__id__exact": private_records["edition"].pk})  # fmt: skip
    assert ("failed", 1) in response.context["state_counts"]
    assert "550 mailbox unavailable" in response.content.decode()


def test_suppress_action_suppresses_through_the_subscription_service(operator_client):
    subscriber = SubscriberFactory()
    response = operator_client.post(reverse("admin:subscriptions_subscriber_changelist"),
                                    {"action": "suppress", "_selected_action": [subscriber.pk]}, follow=True)  # fmt: skip
    assert "Suppressed 1 subscriber;" in _messages(response)[0]
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.SUPPRESSED
    assert Suppression.objects.filter(email=subscriber.email).exists()


def test_resend_confirmation_claims_once_and_skips_confirmed(operator_client, django_capture_on_commit_callbacks):
    pending = SubscriberFactory(status=Subscriber.Status.PENDING)
    confirmed = SubscriberFactory()
    url = reverse("admin:subscriptions_subscriber_changelist")
    data = {"action": "resend_confirmation", "_selected_action": [pending.pk, confirmed.pk]}
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator_client.post(url, data, follow=True)
    assert "Queued 1 confirmation email." in _messages(response)[0]
    assert "1 not pending confirmation" in _messages(response)[0]
    assert len(callbacks) == 1
    pending.refresh_from_db()
    assert pending.last_confirmation_sent_at is not None
    again = operator_client.post(url, data, follow=True)
    assert "Queued 0" in _messages(again)[0] and "too recently" in _messages(again)[0]


# --- preview, test send, re-classify, re-queue ----------------------------


@pytest.fixture
def edition_for_reader(db):
    today = timezone.localdate()
    topic = TopicFactory(name="Robot learning (test)", slug="robot-learning-test", query="robot")
    robot = TrendingEntryFactory(
        date=today, rank=2, paper=PaperFactory(title="Robot manipulation with diffusion policies",
                                               abstract="Robot arms learn manipulation from demonstrations."),  # fmt: skip
    ).paper
    TrendingEntryFactory(date=today, rank=1, paper=PaperFactory(title="Protein folding at scale", abstract="Biology."))
    reader = SubscriberFactory(email=SECRET_ADDRESS, interests="robot manipulation")
    reader.topics.add(topic)
    return Edition.objects.create(date=today), reader, robot


def test_preview_as_subscriber_renders_the_real_email_without_the_address_for_a_curator(
    curator_client, edition_for_reader
):
    edition, reader, robot = edition_for_reader
    url = reverse("admin:digest_edition_preview", args=[edition.pk])
    response = curator_client.get(url, {"subscriber": reader.pk})
    rendered = response.context["rendered"]
    assert robot.title in rendered.text and robot.title in rendered.html
    assert rendered.subject
    page = response.content.decode()
    assert SECRET_ADDRESS not in page and SECRET_ADDRESS not in rendered.html and SECRET_ADDRESS not in rendered.text
    assert reader.token_key not in page
    html = curator_client.get(reverse("admin:digest_edition_preview_part", args=[edition.pk, "html"]),
                              {"subscriber": reader.pk})  # fmt: skip
    assert html["Content-Type"].startswith("text/html") and robot.title in html.content.decode()
    assert "frame-ancestors 'self'" in html["Content-Security-Policy"]
    # The personal links are disabled: a click in a preview must not unsubscribe the reader.
    assert "/unsubscribe/" not in rendered.html and "/manage/" not in rendered.html
    assert not Delivery.objects.exists() and not SentPaper.objects.exists()


def test_an_operator_preview_names_the_subscriber(operator_client, edition_for_reader):
    edition, reader, _ = edition_for_reader
    page = operator_client.get(reverse("admin:digest_edition_preview", args=[edition.pk]), {"subscriber": reader.pk})
    assert SECRET_ADDRESS in page.content.decode()


def test_send_a_test_to_me_mails_the_curator_marked_test_and_records_nothing(
    curator_client, curator, edition_for_reader, smtp_sink
):
    edition, reader, robot = edition_for_reader
    response = curator_client.post(reverse("admin:digest_edition_send_test", args=[edition.pk]),
                                   {"subscriber": reader.pk}, follow=True)  # fmt: skip
    assert f"Sent a [TEST] copy to {curator.email}" in _messages(response)[0]
    [message] = smtp_sink.messages
    assert message.rcpt_tos == [curator.email]
    assert message.subject.strip().startswith("[TEST] ")
    assert message.message["X-Paperboy-Test"] == "1"
    assert robot.title in message.part("text/plain") and robot.title in message.part("text/html")
    assert SECRET_ADDRESS not in message.raw.decode(errors="replace")
    assert not Delivery.objects.exists() and not SentPaper.objects.exists()


def test_send_a_test_without_an_address_on_the_account_says_so(curator_client, curator, edition_for_reader, smtp_sink):
    curator.email = ""
    curator.save()
    edition, reader, _ = edition_for_reader
    response = curator_client.post(reverse("admin:digest_edition_send_test", args=[edition.pk]),
                                   {"subscriber": reader.pk}, follow=True)  # fmt: skip
    assert "no email address" in _messages(response)[0]
    assert not smtp_sink.messages


def test_reclassify_hands_the_papers_to_matching_after_commit(curator_client, django_capture_on_commit_callbacks):
    from digest.signals import papers_changed

    papers = PaperFactory.create_batch(2)
    seen = []

    def receiver(sender, paper_ids, **kwargs):
        seen.append(sorted(paper_ids))

    papers_changed.connect(receiver, dispatch_uid="test-admin-reclassify")
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = _action(curator_client, "paper", "reclassify", [p.pk for p in papers])
        assert "Queued re-classification of 2 papers;" in _messages(response)[0]
        for callback in callbacks:
            callback()
    finally:
        papers_changed.disconnect(dispatch_uid="test-admin-reclassify")
    assert sorted(p.pk for p in papers) in seen


def test_requeue_touches_only_failed_transient_deliveries(operator_client, private_records):
    edition = private_records["edition"]
    transient = Delivery.objects.create(edition=edition, subscriber=SubscriberFactory(), state=Delivery.State.FAILED,
                                        transient_error=True, last_error="451 try later")  # fmt: skip
    permanent = private_records["delivery"]
    response = operator_client.post(reverse("admin:digest_delivery_changelist"),
                                    {"action": "requeue", "_selected_action": [transient.pk, permanent.pk]}, follow=True)  # fmt: skip
    assert "Re-queued 1 delivery (1 selected could not be re-queued and was left alone)." in _messages(response)[0]
    transient.refresh_from_db()
    permanent.refresh_from_db()
    assert transient.state == Delivery.State.PENDING
    assert permanent.state == Delivery.State.FAILED


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"state": Delivery.State.SENT}, "None of the selected deliveries can be re-queued: already sent."),
        ({"state": Delivery.State.SENDING, "lease_until": datetime.datetime(2099, 1, 1, 9, 30, tzinfo=datetime.UTC)},
         "None of the selected deliveries can be re-queued: still sending (the next send run takes it back by itself "
         "after its lease ends at 09:30 UTC)."),
        ({"state": Delivery.State.FAILED, "transient_error": False},
         "None of the selected deliveries can be re-queued: the address was refused and has been suppressed."),
    ],
)
def test_a_requeue_that_takes_nothing_gives_the_true_reason(operator_client, private_records, fields, reason):
    delivery = Delivery.objects.create(edition=private_records["edition"], subscriber=SubscriberFactory(), **fields)
    response = _action(operator_client, "delivery", "requeue", [delivery.pk])
    assert _messages(response) == [reason]


def test_a_requeue_of_mixed_rows_names_every_reason(operator_client, private_records):
    edition = private_records["edition"]
    sent = Delivery.objects.create(edition=edition, subscriber=SubscriberFactory(), state=Delivery.State.SENT)
    stuck = Delivery.objects.create(edition=edition, subscriber=SubscriberFactory(), state=Delivery.State.SENDING,
                                    lease_until=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))  # fmt: skip
    [message] = _messages(_action(operator_client, "delivery", "requeue", [sent.pk, stuck.pk]))
    assert message == ("None of the selected deliveries can be re-queued: already sent; still sending (its lease "
                       "has run out, the next send run takes it back by itself).")  # fmt: skip


def test_operators_filter_the_deliveries_the_server_refused_and_a_requeue_takes_them_off_the_list(
    operator_client, private_records
):
    from digest.services.delivery import SERVER_REJECTED

    edition = private_records["edition"]
    refused = Delivery.objects.create(edition=edition, subscriber=SubscriberFactory(), state=Delivery.State.FAILED,
                                      transient_error=True, rejected=True, last_error="554 sender not verified")  # fmt: skip
    Delivery.objects.create(edition=edition, subscriber=SubscriberFactory(), state=Delivery.State.FAILED,
                            transient_error=True, last_error=f"{SERVER_REJECTED} but only in words")  # fmt: skip
    url = reverse("admin:digest_delivery_changelist") + "?failure=rejected"
    page = operator_client.get(url)
    assert list(page.context["cl"].result_list) == [refused]
    assert "[rejected] 554 sender not verified" in page.content.decode()

    response = _action(operator_client, "delivery", "requeue", [refused.pk])
    assert "Re-queued 1 delivery." in _messages(response)[0]
    assert list(operator_client.get(url).context["cl"].result_list) == []


def test_roles_are_kept_in_step_with_the_models_after_every_migrate():
    from django.contrib.auth.models import Permission
    from django.core.management import call_command

    curators = Group.objects.get(name="curators")
    curators.permissions.remove(Permission.objects.get(codename="change_paper"))
    Group.objects.filter(name="operators").delete()
    call_command("migrate", verbosity=0)
    assert curators.permissions.filter(codename="change_paper").exists()
    operators = Group.objects.get(name="operators")
    every = Permission.objects.filter(content_type__app_label__in=["digest", "subscriptions"])
    assert set(operators.permissions.all()) == set(every)


def test_operators_get_a_model_added_by_the_latest_migration_at_that_migrate():
    """Not only at the next one: post_migrate may reach the roles before auth has made the new model's permissions."""
    from django.contrib.auth.models import Permission
    from django.core.management import call_command

    Permission.objects.filter(content_type__app_label="subscriptions", content_type__model="signupconsent").delete()
    call_command("migrate", verbosity=0)
    operators = Group.objects.get(name="operators")
    assert operators.permissions.filter(codename="view_signupconsent").exists()


def test_an_edition_with_deliveries_cannot_be_deleted_or_redated(operator_client, private_records):
    edition = private_records["edition"]
    assert operator_client.get(reverse("admin:digest_edition_delete", args=[edition.pk])).status_code == 403
    page = operator_client.get(reverse("admin:digest_edition_change", args=[edition.pk])).content.decode()
    assert 'name="date"' not in page
    empty = Edition.objects.create(date=datetime.date(2026, 12, 1))
    assert operator_client.post(reverse("admin:digest_edition_delete", args=[empty.pk]), {"post": "yes"}).status_code == 302
    assert Delivery.objects.filter(pk=private_records["delivery"].pk).exists()


def test_uploading_a_binary_file_is_an_error_message_not_a_500(curator_client, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("picture.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    response = curator_client.post(reverse("admin:digest_paper_upload"), {"file": upload, "format": "auto"})
    assert response.status_code == 200
    assert response.context["form"].errors["file"] == ["picture.png: line 3: binary data (a NUL byte), not a paper list"]
    empty = curator_client.post(reverse("admin:digest_paper_upload"), {"format": "auto"})
    assert "file" in empty.context["form"].errors
    assert Paper.objects.count() == 0


def test_a_failing_mail_server_makes_the_test_send_an_error_message(curator_client, edition_for_reader, smtp_sink):
    edition, reader, _ = edition_for_reader
    smtp_sink.reply = lambda rcpt: "550 no such user"
    response = curator_client.post(reverse("admin:digest_edition_send_test", args=[edition.pk]),
                                   {"subscriber": reader.pk}, follow=True)  # fmt: skip
    assert response.status_code == 200
    assert "The test could not be sent" in _messages(response)[0]


def test_a_papers_topics_inline_lists_its_own_topics_first_and_says_which_it_is_under(curator_client):
    """With a score for every topic, the inline leads with the topics the paper is listed under."""
    paper = PaperFactory()
    PaperTopic.objects.create(paper=paper, topic=TopicFactory(name="Knot theory"), score=0.05)
    PaperTopic.objects.create(paper=paper, topic=TopicFactory(name="Origami"), score=0.1, override=True)
    PaperTopic.objects.create(paper=paper, topic=TopicFactory(name="Bird song"), score=0.9, override=False)
    PaperTopic.objects.create(paper=paper, topic=TopicFactory(name="Lichens"), score=0.7)
    page = curator_client.get(reverse("admin:digest_paper_change", args=[paper.pk]))
    formset = next(f for f in page.context["inline_admin_formsets"] if f.formset.prefix == "topic_scores")
    rows = [(form.original.topic.name, formset.opts.listed(form.original)) for form in formset if form.original]
    assert rows == [("Lichens", "yes"), ("Origami", "yes, by hand"), ("Bird song", "no, by hand"), ("Knot theory", "no")]
    assert "0.70 (lists at 0.30)" in page.content.decode()


def test_the_sending_ledgers_are_read_only_and_trending_entries_come_from_imports(client, django_user_model):
    """Deleting a delivery or a sent-paper row would erase the record of what a reader got (and
    what keeps it from coming twice); an entry typed in here would miss an edition already frozen."""
    client.force_login(django_user_model.objects.create_superuser("root", "root@paperboy.test", "pw"))
    edition = Edition.objects.create(date=timezone.localdate())
    reader = SubscriberFactory()
    paper = PaperFactory()
    delivery = Delivery.objects.create(edition=edition, subscriber=reader, state=Delivery.State.SENT)
    sent = SentPaper.objects.create(subscriber=reader, paper=paper, delivery=delivery, sent_on=edition.date)
    assert client.get(reverse("admin:digest_delivery_delete", args=[delivery.pk])).status_code == 403
    assert client.get(reverse("admin:digest_sentpaper_delete", args=[sent.pk])).status_code == 403
    assert client.get(reverse("admin:digest_sentpaper_add")).status_code == 403
    assert client.get(reverse("admin:digest_trendingentry_add")).status_code == 403
    assert client.get(reverse("admin:digest_sentpaper_change", args=[sent.pk])).status_code == 200  # still readable
    assert Delivery.objects.filter(pk=delivery.pk).exists() and SentPaper.objects.filter(pk=sent.pk).exists()


def test_an_operator_can_still_delete_a_reader_with_their_ledger_rows(operator_client):
    """An erasure request: the reader goes, and their deliveries and sent papers with them."""
    edition = Edition.objects.create(date=timezone.localdate())
    reader = SubscriberFactory()
    delivery = Delivery.objects.create(edition=edition, subscriber=reader, state=Delivery.State.SENT)
    SentPaper.objects.create(subscriber=reader, paper=PaperFactory(), delivery=delivery, sent_on=edition.date)
    url = reverse("admin:subscriptions_subscriber_delete", args=[reader.pk])
    assert "Are you sure" in operator_client.get(url).content.decode()
    assert operator_client.post(url, {"post": "yes"}).status_code == 302
    assert not Subscriber.objects.filter(pk=reader.pk).exists()
    assert not Delivery.objects.exists() and not SentPaper.objects.exists()


# --- subscriber change form -------------------------------------------------


def test_a_suppressed_subscriber_cannot_be_set_back_to_confirmed_while_suppressed(operator_client):
    subscriber = SubscriberFactory(email="bounced@example.org")
    subscription_services.subscriber_suppress(email=subscriber.email, reason="hard bounce: 550 no such user")
    subscriber.refresh_from_db()
    url = reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])
    response = operator_client.post(url, subscriber_form_data(operator_client, subscriber, status="confirmed"))
    assert response.status_code == 200  # the form again, with the reason, not a save
    errors = response.context["adminform"].form.errors["status"]
    assert "suppressed (hard bounce: 550 no such user)" in errors[0] and "delete its suppression" in errors[0]
    suppression = Suppression.objects.get(email=subscriber.email)
    delete_url = reverse("admin:subscriptions_suppression_delete", args=[suppression.pk])
    assert f'<a href="{delete_url}">delete its suppression</a>' in response.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.SUPPRESSED


def test_once_its_suppression_is_deleted_a_subscriber_can_be_confirmed_again(operator_client):
    subscriber = SubscriberFactory(email="bounced@example.org")
    subscription_services.subscriber_suppress(email=subscriber.email, reason="hard bounce")
    subscriber.refresh_from_db()
    suppression = Suppression.objects.get(email=subscriber.email)
    operator_client.post(reverse("admin:subscriptions_suppression_delete", args=[suppression.pk]), {"post": "yes"})
    assert not Suppression.objects.exists()
    url = reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])
    response = operator_client.post(url, subscriber_form_data(operator_client, subscriber, status="confirmed"))
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED


def test_setting_the_status_to_suppressed_by_hand_records_the_suppression_as_a_bounce_does(operator_client):
    subscriber = SubscriberFactory(email="by.hand@example.org")
    bounced = SubscriberFactory(email="bounced@example.org")
    subscription_services.subscriber_suppress(email=bounced.email, reason="hard bounce")
    url = reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])
    response = operator_client.post(url, subscriber_form_data(operator_client, subscriber, status="suppressed"))
    assert response.status_code == 302
    assert Suppression.objects.get(email=subscriber.email).reason == "admin: suppressed by operator"
    subscriber.refresh_from_db()
    bounced.refresh_from_db()
    assert subscriber.suppressed_reason == "admin: suppressed by operator"
    assert subscriber.suppressed_at is not None and bounced.suppressed_at is not None
    # and, as after a bounce, it is not set back here while its Suppression row exists.
    refused = operator_client.post(url, subscriber_form_data(operator_client, subscriber, status="confirmed"))
    assert refused.status_code == 200 and "delete its suppression" in refused.content.decode()
    # The Suppression row outlives the subscriber: erased and signing up again, the address stays out.
    for address in (subscriber, bounced):
        address.delete()
        outcome = subscription_services.subscriber_signup(
            email=address.email, preferences=subscription_services.Preferences(topics=[]),
            consent=subscription_services.Consent(),
        )  # fmt: skip
        assert outcome == subscription_services.SignupOutcome.SUPPRESSED, address.email


def test_a_subscriber_added_as_suppressed_is_recorded_as_suppressed(operator_client):
    data = subscriber_form_data(operator_client, None, email="new@example.org", status="suppressed", topics=[])
    response = operator_client.post(reverse("admin:subscriptions_subscriber_add"), data)
    assert response.status_code == 302
    assert Suppression.objects.filter(email="new@example.org", reason="admin: suppressed by operator").exists()
    assert Subscriber.objects.get(email="new@example.org").suppressed_at is not None


def test_a_suppression_added_in_the_admin_marks_its_subscriber_suppressed(operator_client):
    subscriber = SubscriberFactory(email="reported@example.org")
    response = operator_client.post(reverse("admin:subscriptions_suppression_add"),
                                    {"email": "Reported@example.org", "reason": "complaint by phone"})  # fmt: skip
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.SUPPRESSED
    assert subscriber.suppressed_reason == "complaint by phone"


def test_the_admin_refuses_an_unknown_time_zone(operator_client):
    subscriber = SubscriberFactory(timezone="Europe/Berlin")
    url = reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])
    response = operator_client.post(url, subscriber_form_data(operator_client, subscriber, timezone="Mars/Olympus"))
    assert response.status_code == 200
    assert "Unknown time zone 'Mars/Olympus'" in response.context["adminform"].form.errors["timezone"][0]
    subscriber.refresh_from_db()
    assert subscriber.timezone == "Europe/Berlin"
    saved = operator_client.post(url, subscriber_form_data(operator_client, subscriber, timezone="Asia/Calcutta"))
    assert saved.status_code == 302  # an alias zoneinfo knows is a zone
    subscriber.refresh_from_db()
    assert subscriber.timezone == "Asia/Calcutta"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": "q@localhost"}, "email", "Enter a valid email address."),
        ({"email": "yan@" + "ö" * 61 + ".org"}, "email",
         "The part after the @ is not a domain name mail can be sent to; please check it for typos."),
        ({"email": "taken@example.org"}, "email", "A subscriber with this address already exists."),
        ({"email": "Taken@Example.org"}, "email", "A subscriber with this address already exists."),
        ({"interests": "robots\r\nBcc: x@example.org"}, "interests", "Line breaks are not allowed here."),
        ({"digest_size": "99"}, "digest_size", "Ensure this value is less than or equal to 30."),
        ({"send_hour": "24"}, "send_hour", "Select a valid choice. 24 is not one of the available choices."),
    ],
)
def test_the_admin_subscriber_form_checks_what_signup_checks_in_plain_words(operator_client, changes, field, message):
    SubscriberFactory(email="taken@example.org")
    data = subscriber_form_data(operator_client, None, **{"email": "new@example.org", "interests": "robots", **changes})
    response = operator_client.post(reverse("admin:subscriptions_subscriber_add"), data)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors[field] == [message]
    assert "Constraint" not in response.content.decode()
    assert Subscriber.objects.count() == 1


def test_the_admin_add_form_stores_an_address_as_signup_spells_it(operator_client):
    data = subscriber_form_data(operator_client, None, email=" Hans@Straße.example ", interests="robots", topics=[])
    response = operator_client.post(reverse("admin:subscriptions_subscriber_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Subscriber.objects.get().email == "hans@xn--strae-oqa.example"


@pytest.mark.parametrize("q", ["oscar@bücher.example", "bücher.example", "OSCAR@BÜCHER.EXAMPLE"])
def test_the_subscriber_search_finds_an_internationalised_domain_typed_in_unicode(operator_client, q):
    SubscriberFactory(email="oscar@bücher.example")
    SubscriberFactory(email="other@example.org")
    response = operator_client.get(reverse("admin:subscriptions_subscriber_changelist"), {"q": q})
    assert [s.email for s in response.context["cl"].result_list] == ["oscar@xn--bcher-kva.example"]


@pytest.mark.parametrize("typed", ["A@Bücher.example", "a@xn--bcher-kva.example ", "A@XN--BCHER-KVA.example"])
def test_suppressing_an_address_already_suppressed_in_another_spelling_is_a_form_error_not_a_500(operator_client, typed):
    Suppression.objects.create(email="a@bücher.example", reason="complaint")
    response = operator_client.post(reverse("admin:subscriptions_suppression_add"), {"email": typed, "reason": "by hand"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == ["This address is already suppressed."]
    assert list(Suppression.objects.values_list("email", flat=True)) == ["a@xn--bcher-kva.example"]


def test_a_suppression_typed_with_a_unicode_domain_is_stored_as_sending_spells_it(operator_client):
    subscriber = SubscriberFactory(email="oscar@bücher.example")
    response = operator_client.post(reverse("admin:subscriptions_suppression_add"), {"email": "Oscar@Bücher.example", "reason": "asked"})
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert Suppression.objects.get().email == subscriber.email == "oscar@xn--bcher-kva.example"
    assert subscriber.status == Subscriber.Status.SUPPRESSED
