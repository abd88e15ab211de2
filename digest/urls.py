from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django_ratelimit.decorators import ratelimit

from digest import views
from digest.services import tracking  # noqa: F401 - connects the anymail tracking receiver
from subscriptions.views import BACKEND_DOWN, unavailable

# Password guessing on the admin: a few POSTs per minute per IP, then the friendly 429 page.
_admin_login_limited = ratelimit(key="ip", rate=settings.ADMIN_LOGIN_RATE, method="POST", block=True)(admin.site.login)


def admin_login(request, **kwargs):
    # The counters live in Redis: with it down, the signup form's 503 page, not a 500.
    try:
        return _admin_login_limited(request, **kwargs)
    except BACKEND_DOWN:
        return unavailable(request)


digest_patterns = [
    path("digest/", views.edition_index, name="index"),
    path("digest/<str:date>/", views.edition_detail, name="edition"),
    path("feed/", views.EditionFeed(), name="feed"),
]
if not settings.PRODUCTION:
    digest_patterns += [
        path("dev/mail/", views.mail_list, name="mail_list"),
        path("dev/mail/<str:name>/", views.mail_detail, name="mail_detail"),
        path("dev/mail/<str:name>/html/", views.mail_html, name="mail_html"),
    ]

urlpatterns = [
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    # anymail's own webhook views: basic auth with ANYMAIL["WEBHOOK_SECRET"], e.g. /anymail/postmark/tracking/
    path("anymail/", include((views.anymail_webhook_patterns(), "anymail"))),
    path("", include((digest_patterns, "digest"))),
    path("", include("subscriptions.urls")),
]

handler404 = "digest.error_pages.not_found"
handler500 = "digest.error_pages.server_error"
