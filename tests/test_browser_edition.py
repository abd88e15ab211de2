"""The public edition page ("The whole edition online" in every digest) in headless Chromium, phone and desktop.

Screenshots go to tests/artifacts/edition-phone.png and edition-desktop.png.
"""

import datetime
import os

import pytest

from digest.services.editions import edition_freeze
from tests.browser_support import ARTIFACTS, CHROMIUM, browser  # noqa: F401
from tests.digest_support import trending_day

DAY = datetime.date(2026, 3, 12)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (CI installs Debian's chromium)"),
]

# Each title's box, and the box of the element after it (the authors line).
_BOXES = """() => [...document.querySelectorAll('.edition h2')].map(h => {
    const next = h.nextElementSibling.getBoundingClientRect(), box = h.getBoundingClientRect();
    return {title: h.textContent.trim(), width: box.width, bottom: box.bottom, left: box.left,
            nextTop: next.top, nextLeft: next.left};
})"""


@pytest.fixture
def edition_url(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    trending_day(
        day=DAY, count=4, authors=["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"],
        title="Scaling Diffusion Transformers to Video at Minute Length with Sparse Attention",
    )  # fmt: skip
    edition_freeze(day=DAY)
    ARTIFACTS.mkdir(exist_ok=True)
    return f"{live_server.url}/digest/{DAY.isoformat()}/"



@pytest.mark.parametrize(
    "name, viewport, min_width",
    [("phone", {"width": 375, "height": 812}, 250), ("desktop", {"width": 1280, "height": 900}, 600)],
)
def test_the_edition_page_is_one_readable_column(browser, edition_url, name, viewport, min_width):
    context = browser.new_context(viewport=viewport, is_mobile=name == "phone")
    page = context.new_page()
    page.goto(edition_url)
    boxes = page.evaluate(_BOXES)
    page.screenshot(path=str(ARTIFACTS / f"edition-{name}.png"), full_page=True)
    assert len(boxes) == 4
    for box in boxes:
        assert box["width"] >= min_width, box
        # The authors line starts below the title, in the same column, not beside or under it.
        assert box["nextTop"] >= box["bottom"] - 0.5, box
        assert abs(box["nextLeft"] - box["left"]) < 1, box
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]  # no sideways scrolling
    context.close()


def test_the_landing_page_keeps_its_vote_count_column(browser, edition_url):
    # The same day's papers are the landing page's "Trending" list.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(edition_url.split("/digest/")[0] + "/")
    votes = page.locator(".paper-list .paper__votes").first.bounding_box()
    body = page.locator(".paper-list .paper__body").first.bounding_box()
    assert votes["width"] == 64 and body["x"] >= votes["x"] + votes["width"]  # beside the count, not under it
    context.close()
