"""The site's own pages for errors: 404, 500, a refused CSRF check, and 405, which Django leaves empty."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string


def _html(request: HttpRequest | None, template: str, context: dict | None = None) -> str:
    return render_to_string(template, {"site_name": settings.SITE_NAME, **(context or {})}, request)


def _page(request: HttpRequest | None, template: str, *, status: int) -> HttpResponse:
    return HttpResponse(_html(request, template), status=status)


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """urls.handler404. The exception's text is not shown: it can name internals."""
    return _page(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """urls.handler500. Rendered without the request: its context processors read the session and
    user, and the database may be what failed. 500.html itself uses no tag that could fail."""
    return _page(None, "500.html", status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """settings.CSRF_FAILURE_VIEW: a form from an expired page or with cookies blocked."""
    return _page(request, "403_csrf.html", status=403)


class MethodNotAllowedPageMiddleware:
    """require_POST / require_http_methods answer 405 with an empty body: give it a page (Allow kept)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 405 and not response.streaming and not response.content:
            allowed = [method.strip() for method in response.get("Allow", "").split(",") if method.strip()]
            response.content = _html(request, "405.html", {"allowed": allowed, "opens": "GET" in allowed})
            response["Content-Type"] = "text/html; charset=utf-8"
        return response
