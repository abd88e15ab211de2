"""The default Robotics query said the bare word `control`, which made "Computer Control Agents" and
"Arithmetic Control of LLMs" Robotics papers for readers who follow that topic. Installs whose
Robotics query is still the shipped one get the new query; a curator's edit is left alone."""

from django.db import migrations

OLD = 'robot, robotics, "robot learning", manipulation, locomotion, control, "autonomous driving", UAV, drone, "feedback policies"'
NEW = (
    'robot, robotics, "robot learning", manipulation, locomotion, "robot control", "motion control", '
    '"autonomous driving", UAV, drone, "feedback policies"'
)


def forwards(apps, schema_editor):
    apps.get_model("digest", "Topic").objects.filter(slug="robotics", query=OLD).update(query=NEW)


def backwards(apps, schema_editor):
    apps.get_model("digest", "Topic").objects.filter(slug="robotics", query=NEW).update(query=OLD)


class Migration(migrations.Migration):
    dependencies = [("digest", "0009_paper_pinned_help_text")]

    operations = [migrations.RunPython(forwards, backwards)]
