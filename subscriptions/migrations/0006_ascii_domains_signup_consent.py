"""Two changes to the subscriptions (0006 is this branch's one migration):

- Addresses stored with an internationalised domain take its ASCII (punycode) form, the one
  subscriptions.addresses.email_normalize now gives every new signup, import and suppression:
  otherwise the next signup in either spelling would be a second subscriber for the address.
- SignupConsent: the evidence of each further signup of a pending address, kept for the
  confirmation link that signup was sent.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.utils.encoding import punycode


def _ascii(email: str) -> str:
    # email_normalize as of this migration, frozen here: a later change to it must not rewrite history.
    local, at, domain = email.strip().lower().rpartition("@")
    try:
        return f"{local}{at}{punycode(domain)}"
    except UnicodeError:
        return email


def _rewrite(model) -> None:
    # Few rows have a non-ASCII domain; reading the addresses alone finds them.
    for pk, email in model.objects.values_list("pk", "email").iterator(chunk_size=2000):
        if email.isascii() or (new := _ascii(email)) == email:
            continue
        if model.objects.filter(email=new).exists():
            # Both spellings are stored already. A suppression is kept by the ASCII row; two
            # subscribers are an operator's to merge (their preferences and history differ).
            if model._meta.model_name == "suppression":
                model.objects.filter(pk=pk).delete()
            continue
        model.objects.filter(pk=pk).update(email=new)


def forwards(apps, schema_editor):
    _rewrite(apps.get_model("subscriptions", "Suppression"))
    _rewrite(apps.get_model("subscriptions", "Subscriber"))


class Migration(migrations.Migration):

    dependencies = [
        ("subscriptions", "0005_subscriber_confirmation_lost_index"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.CreateModel(
            name="SignupConsent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("signup_at", models.DateTimeField()),
                ("signup_ip", models.GenericIPAddressField(blank=True, null=True)),
                ("signup_user_agent", models.CharField(blank=True, max_length=500)),
                ("signup_source", models.CharField(blank=True, max_length=40)),
                ("subscriber", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                 related_name="signup_consents", to="subscriptions.subscriber")),
            ],
        ),
    ]
