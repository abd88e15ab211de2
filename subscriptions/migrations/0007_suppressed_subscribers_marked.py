"""Every subscriber whose address has a Suppression row gets the suppressed status, as
subscriptions.services.subscriber_suppress leaves it (status, suppressed_at, suppressed_reason).

Older code left some that were not: a suppression added in the admin did not mark its
subscriber, and the admin could set a suppressed subscriber back to confirmed. Mail skips those
addresses anyway (it reads the Suppression rows), but the subscriber still looked active: listed
and counted as confirmed (or pending) in the admin and on its growth chart.

One UPDATE however many rows; suppressed_at is when the address was suppressed (the row's
created_at), not the day this ran. Backwards is a no-op: the suppressions still stand, and
which subscribers were set by this cannot be told apart from the others.
"""

from django.db import migrations
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone


def forwards(apps, schema_editor):
    Subscriber = apps.get_model("subscriptions", "Subscriber")
    Suppression = apps.get_model("subscriptions", "Suppression")
    # The same match as sending's exclusion (digest.services.delivery): the address as stored.
    suppression = Suppression.objects.filter(email=OuterRef("email"))
    # subscriber_suppress's filter: a suppressed status without its stamp (set by hand) gets it too.
    Subscriber.objects.filter(Exists(suppression)).exclude(status="suppressed", suppressed_at__isnull=False).update(
        status="suppressed",
        suppressed_at=Subquery(suppression.values("created_at")[:1]),
        suppressed_reason=Subquery(suppression.values("reason")[:1]),
        updated_at=timezone.now(),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0006_ascii_domains_signup_consent"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
