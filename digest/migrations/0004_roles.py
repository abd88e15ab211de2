"""The two admin roles.

curators: shape the digest (papers, their topics and trending entries, topics,
editions). They get no permission on anything that shows a subscriber's address
(subscribers, suppressions, deliveries, the sent-papers ledger, webhook events),
and the admin checks those permissions on every URL, not only in the menu.

operators: everything in the digest and subscriptions apps, plus releasing a
held edition and the sending-health page.
"""

from django.db import migrations

CURATOR_MODELS = ["paper", "papertopic", "trendingentry", "topic", "edition"]
# Custom permissions (not tied to a model's Meta, so no model change is needed).
EXTRA_PERMISSIONS = [
    ("edition", "release_edition", "Can release a held edition"),
    ("edition", "view_sending_health", "Can view the sending-health page"),
]


def _ensure_model_permissions(apps):
    # Permissions are normally created after migrate (post_migrate); a fresh
    # database reaches this migration before that, so create them now.
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    for label in ("digest", "subscriptions"):
        app_config = global_apps.get_app_config(label)
        create_permissions(app_config, apps=apps, verbosity=0)


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    _ensure_model_permissions(apps)

    edition_ct, _ = ContentType.objects.get_or_create(app_label="digest", model="edition")
    extra = []
    for model, codename, name in EXTRA_PERMISSIONS:
        perm, _ = Permission.objects.get_or_create(content_type=edition_ct, codename=codename, defaults={"name": name})
        extra.append(perm)

    curators, _ = Group.objects.get_or_create(name="curators")
    curators.permissions.set(
        Permission.objects.filter(content_type__app_label="digest", content_type__model__in=CURATOR_MODELS).exclude(
            codename__in=[codename for _, codename, _ in EXTRA_PERMISSIONS]
        )
    )

    operators, _ = Group.objects.get_or_create(name="operators")
    operators.permissions.set(Permission.objects.filter(content_type__app_label__in=["digest", "subscriptions"]))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["curators", "operators"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("subscriptions", "0001_initial"),
        ("digest", "0003_edition_hold_release"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
