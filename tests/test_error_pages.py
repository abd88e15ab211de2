"""Error answers are pages in the site's look, never Django's bare or technical ones."""

import pytest
from django.test import Client
from django.urls import path

from subscriptions.tokens import Purpose, token_make
from tests.factories import SubscriberFactory


def _boom(request):
    raise RuntimeError("a bug")


# The URLconf of test_a_server_error_gets_the_static_500_page.
urlpatterns = [path("boom/", _boom)]
handler500 = "digest.error_pages.server_error"


def _looks_like_the_site(html: str) -> None:
    assert 'class="site-header"' in html and "/static/css/site.css" in html


@pytest.mark.django_db
def test_an_unknown_address_gets_the_sites_404_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html and "Not Found" not in html
    _looks_like_the_site(html)


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["pause", "unsubscribe", "new-link"])
def test_opening_a_button_only_address_explains_itself_and_keeps_allow(client, action):
    token = token_make(subscriber=SubscriberFactory(), purpose=Purpose.MANAGE)
    response = client.get(f"/manage/{token}/{action}/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    html = response.content.decode()
    assert "Not something to open" in html and "use the button there" in html
    _looks_like_the_site(html)


@pytest.mark.django_db
def test_a_method_a_page_does_not_take_is_refused_with_a_page(client):
    response = client.delete("/link/")
    assert response.status_code == 405
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert "doesn't take that kind of request" in response.content.decode()


@pytest.mark.django_db
def test_a_refused_csrf_check_gets_a_page_not_djangos_technical_403():
    response = Client(enforce_csrf_checks=True).post("/", {"email": "csrf@example.org", "interests": "robots"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "Please try that again" in html and "Nothing was saved" in html
    assert "DEBUG" not in html and "CSRF" not in html
    _looks_like_the_site(html)


@pytest.mark.urls(__name__)
def test_a_server_error_gets_the_static_500_page_without_touching_the_database():
    # No db fixture: any query from the handler or its template would fail this test.
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html and "a bug" not in html
    _looks_like_the_site(html)
