"""Raw interface byte counters move from the `traffic` metric to their own, `traffic_counter`, so that traffic
charts no longer read (and filter out) them."""

from django.db import migrations

COUNTER_FIELDS = ("rx_counter", "tx_counter")


def move(apps, schema_editor, source, target):
    for name in ("Point", "Rollup"):
        model = apps.get_model("monitoring", name)
        model.objects.filter(metric=source, field__in=COUNTER_FIELDS).update(metric=target)


def forwards(apps, schema_editor):
    move(apps, schema_editor, "traffic", "traffic_counter")


def backwards(apps, schema_editor):
    move(apps, schema_editor, "traffic_counter", "traffic")


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
