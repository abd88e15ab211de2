from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Subscribers"

    def ready(self):
        # Connects the receivers that drop the cached topics and landing page.
        from . import page_cache  # noqa: F401
