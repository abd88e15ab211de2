from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django_ratelimit.decorators import ratelimit

# Password guessing on the admin: a few POSTs per minute per IP, then the friendly 429 page.
admin_login = ratelimit(key="ip", rate=settings.ADMIN_LOGIN_RATE, method="POST", block=True)(admin.site.login)

urlpatterns = [
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("", include("subscriptions.urls")),
]
