from django.db import migrations


def create_environments(apps, schema_editor):
    Environment = apps.get_model("workspace", "Environment")
    for slug, name in (("sandbox", "Sandbox"), ("live", "Live")):
        Environment.objects.get_or_create(slug=slug, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("workspace", "0001_initial")]
    operations = [migrations.RunPython(create_environments, migrations.RunPython.noop)]
