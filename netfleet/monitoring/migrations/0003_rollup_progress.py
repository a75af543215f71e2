"""The rollup watermark. Before it, rollups held only downsampled hours (raw points past the raw retention, then
deleted) and raw points older than the newest rollup hour could only be late arrivals not yet folded in. Those are
folded in (as the next downsampling would have done) and the watermark starts at the end of the newest rollup
hour: every newer raw point is then exactly what the rollups do not count yet, and the first rollup run catches
up from there."""

from django.db import migrations, models
from django.db.models import Max

HOUR = 3_600_000_000  # µs
COUNTER_METRIC = "traffic_counter"  # never rolled up (netfleet.monitoring.netjson)


def start_where_downsampling_stopped(apps, schema_editor):
    Point = apps.get_model("monitoring", "Point")
    Rollup = apps.get_model("monitoring", "Rollup")
    RollupProgress = apps.get_model("monitoring", "RollupProgress")
    newest = Rollup.objects.aggregate(newest=Max("time"))["newest"]
    horizon = 0 if newest is None else newest + HOUR
    late = {}
    rows = Point.objects.filter(time__lt=horizon).exclude(metric=COUNTER_METRIC)
    for device_id, metric, tag, field, time, value in rows.values_list(
        "device_id", "metric", "tag", "field", "time", "value"
    ).iterator():
        key = (device_id, metric, tag, field, time - time % HOUR)
        count, total, low, high = late.get(key, (0, 0.0, value, value))
        late[key] = (count + 1, total + value, min(low, value), max(high, value))
    for (device_id, metric, tag, field, hour), (count, total, low, high) in late.items():
        rollup, created = Rollup.objects.get_or_create(
            device_id=device_id, metric=metric, tag=tag, field=field, time=hour,
            defaults={"count": count, "sum": total, "min": low, "max": high},
        )
        if not created:
            rollup.count, rollup.sum = rollup.count + count, rollup.sum + total
            rollup.min, rollup.max = min(rollup.min, low), max(rollup.max, high)
            rollup.save()
    Point.objects.filter(time__lt=horizon).delete()
    RollupProgress.objects.create(pk=1, rolled_up_until=horizon, downsampled_until=horizon)


class Migration(migrations.Migration):

    dependencies = [
        ('monitoring', '0002_traffic_counter_metric'),
    ]

    operations = [
        migrations.CreateModel(
            name='RollupProgress',
            fields=[
                ('id', models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ('rolled_up_until', models.BigIntegerField(default=0, help_text='Start of an hour, µs since the epoch')),
                ('downsampled_until', models.BigIntegerField(default=0, help_text='Start of an hour, µs since the epoch')),
            ],
            options={
                'verbose_name': 'rollup progress',
                'verbose_name_plural': 'rollup progress',
            },
        ),
        migrations.RunPython(start_where_downsampling_stopped, migrations.RunPython.noop),
    ]
