from django.urls import path

from . import views

app_name = "subscriptions"

urlpatterns = [
    path("", views.signup, name="signup"),
    path("check-your-inbox/", views.signup_done, name="signup_done"),
    path("link/", views.link_request, name="link_request"),
    path("link/sent/", views.link_sent, name="link_sent"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("manage/<str:token>/", views.manage, name="manage"),
    path("manage/<str:token>/pause/", views.manage_pause, name="manage_pause"),
    path("manage/<str:token>/unsubscribe/", views.manage_unsubscribe, name="manage_unsubscribe"),
    path("manage/<str:token>/new-link/", views.manage_new_link, name="manage_new_link"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("unsubscribe/<str:token>/confirm/", views.unsubscribe_confirm, name="unsubscribe_confirm"),
]
