"""A later signup of a pending address keeps its own preferences (SignupConsent), instead of
replacing the subscriber's: confirming through its link applies them.

Rows from before this migration were written while a later signup still replaced the
subscriber's preferences, so the subscriber's are what any of their links confirms today:
each row gets a copy of them, and the links already sent confirm what they did before.
"""

from django.db import migrations, models

PREFERENCE_FIELDS = ("interests", "frequency", "weekday", "send_hour", "timezone", "digest_size")


def forwards(apps, schema_editor):
    SignupConsent = apps.get_model("subscriptions", "SignupConsent")
    rows = SignupConsent.objects.select_related("subscriber").prefetch_related("subscriber__topics")
    for consent in rows.iterator(chunk_size=500):
        for name in PREFERENCE_FIELDS:
            setattr(consent, name, getattr(consent.subscriber, name))
        consent.save(update_fields=PREFERENCE_FIELDS)
        consent.topics.set(consent.subscriber.topics.all())


class Migration(migrations.Migration):

    dependencies = [
        ("digest", "0015_delivery_rejected"),
        ("subscriptions", "0007_suppressed_subscribers_marked"),
    ]

    operations = [
        migrations.AddField(
            model_name="signupconsent",
            name="topics",
            field=models.ManyToManyField(blank=True, related_name="+", to="digest.topic"),
        ),
        migrations.AddField(
            model_name="signupconsent",
            name="interests",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="signupconsent",
            name="frequency",
            field=models.CharField(choices=[("daily", "Daily"), ("weekly", "Weekly")], default="daily", max_length=6),
        ),
        migrations.AddField(
            model_name="signupconsent",
            name="weekday",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="signupconsent",
            name="send_hour",
            field=models.PositiveSmallIntegerField(default=7),
        ),
        migrations.AddField(
            model_name="signupconsent",
            name="timezone",
            field=models.CharField(default="UTC", max_length=64),
        ),
        migrations.AddField(
            model_name="signupconsent",
            name="digest_size",
            field=models.PositiveSmallIntegerField(default=10),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
