"""Ships the default topic taxonomy (digest/matching/default_topics.py). Curators edit it in the admin."""

from django.db import migrations


def add_topics(apps, schema_editor):
    from digest.matching.default_topics import DEFAULT_TOPICS

    Topic = apps.get_model("digest", "Topic")
    for position, topic in enumerate(DEFAULT_TOPICS):
        # Never overwrite a curator's edits if a topic with that slug already exists.
        Topic.objects.get_or_create(
            slug=topic["slug"],
            defaults={
                "name": topic["name"],
                "description": topic["description"],
                "query": topic["query"],
                "position": position,
                "active": True,
            },
        )


def remove_topics(apps, schema_editor):
    from digest.matching.default_topics import DEFAULT_TOPICS

    Topic = apps.get_model("digest", "Topic")
    Topic.objects.filter(slug__in=[t["slug"] for t in DEFAULT_TOPICS]).delete()


class Migration(migrations.Migration):
    dependencies = [("digest", "0004_roles")]

    operations = [migrations.RunPython(add_topics, remove_topics)]
