from django.apps import AppConfig


class DigestConfig(AppConfig):
    name = "digest"
    verbose_name = "Papers and digests"

    def ready(self):
        # Connects the receivers that classify and embed papers when they or the topics change.
        from digest.tasks import classify  # noqa: F401
