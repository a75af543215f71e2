"""Fleet data for the workloads, written through the ORM in a `netfleet shell` of the instance."""

import contextlib
import sqlite3

SITES = """
from netfleet.accounts.models import Organization, Site

organization = Organization.objects.get(slug="default")
Site.objects.bulk_create(
    [
        Site(organization=organization, name=f"Bench site {{i:06d}}", slug=f"bench-site-{{i:06d}}")
        for i in range({count})
    ],
    batch_size=1000,
    ignore_conflicts=True,
)
print(Site.objects.filter(organization=organization).count())
"""


def seed_sites(instance, count):
    """Create `count` sites in the default organization; return how many it has now.

    Fixed slugs plus ignore_conflicts keep a reused database (BENCH_DATABASE_URL) from growing on every run.
    """
    output = instance.shell(SITES.format(count=int(count)))
    return int(output.strip().splitlines()[-1])


DEVICES = """
import json, random
from netfleet.accounts.models import Organization
from netfleet.controller.models import Config, Device, Template, ConfigTemplate

organization = Organization.objects.get(slug="default")
template, _ = Template.objects.get_or_create(
    organization=organization, name="bench-lan",
    defaults={{"config": {{"interfaces": [{{"name": "lan", "type": "bridge", "bridge_members": ["eth0"]}}]}}}},
)
existing = Device.objects.filter(organization=organization, name__startswith="bench-").count()
devices = [
    Device(organization=organization, name=f"bench-{{i:07d}}", key=f"{{i:032x}}",
           mac_address=":".join(f"{{(i >> s) & 0xFF:02X}}" for s in (40, 32, 24, 16, 8, 0)))
    for i in range(existing, {count})
]
Device.objects.bulk_create(devices, batch_size=2000)
new = list(Device.objects.filter(organization=organization, config__isnull=True).values_list("pk", flat=True))
Config.objects.bulk_create(
    [Config(device_id=pk, config={{"general": {{"hostname": "{{{{ name }}}}"}}}}) for pk in new], batch_size=2000
)
ConfigTemplate.objects.bulk_create(
    [ConfigTemplate(config=c, template=template, order=0) for c in Config.objects.filter(device_id__in=new)],
    batch_size=2000,
)
sample = list(Device.objects.filter(organization=organization).values_list("pk", "key")[: {count}])
random.Random(7).shuffle(sample)
# the polled devices' configs rendered, as every config of a real fleet is (creation renders it): agent polls
# then measure serving a stored checksum, not a device's very first render
from netfleet.controller.services import refresh_configs
sampled = [pk for pk, key in sample[: {sample}]]
refresh_configs(list(Config.objects.filter(device_id__in=sampled, checksum="").values_list("pk", flat=True)))
print(json.dumps({{"devices": Device.objects.filter(organization=organization).count(),
                  "sample": [[pk.hex, key] for pk, key in sample[: {sample}]]}}))
"""


def seed_devices(instance, count, sample=1000):
    """A fleet of `count` devices (each with a config and a template) in the default organization, written in
    bulk (the workloads measure serving, not seeding). Returns (device count, [(id hex, key)] sample)."""
    import json

    output = instance.shell(DEVICES.format(count=int(count), sample=int(sample)))
    data = json.loads(output.strip().splitlines()[-1])
    return data["devices"], [tuple(item) for item in data["sample"]]


RENDER_COLD = """
import json, time
from django.core.cache import cache
from netfleet.controller import services
from netfleet.controller.models import Config

ids = list(Config.objects.values_list("pk", flat=True)[: {count}])
cache.clear()
started = time.perf_counter()
configs = list(services._configs_for_render(ids))
for config in configs:
    services.render_config(config)
elapsed = time.perf_counter() - started
print(json.dumps({{"configs": len(configs), "seconds": round(elapsed, 3)}}))
"""


def render_cold(instance, count=500):
    """Render `count` configs with an empty cache, in one process: configs per second."""
    import json

    return json.loads(instance.shell(RENDER_COLD.format(count=int(count))).strip().splitlines()[-1])


CHART_HISTORY = """
import json
from datetime import timedelta
from django.utils import timezone
from netfleet.controller.models import Device
from netfleet.monitoring import ingest

document = json.loads({document!r})
device = Device.objects.get(pk="{device_id}")
now = timezone.now()
steps = {days} * 24 * 12
for step in range(steps):  # every 5 minutes, oldest first, counters growing as a real device's do
    for n, interface in enumerate(document["interfaces"]):
        interface["statistics"]["rx_bytes"] = (step + 1) * 1000 * (n + 1)
        interface["statistics"]["tx_bytes"] = (step + 1) * 500 * (n + 1)
    ingest.ingest(device=device, document=document, time=now - timedelta(minutes=5 * (steps - step)))
print(steps)
"""


def seed_chart_history(instance, device_id, document, days=7):
    """`days` of 5-minute documents for one device, ingested as an agent would have sent them, then the closed
    hours rolled up as beat does every few minutes in production (the bench serves with --no-celery)."""
    output = instance.shell(CHART_HISTORY.format(document=document, device_id=device_id, days=int(days)))
    instance.manage("monitoring_rollup")
    return int(output.strip().splitlines()[-1])


POINT_COUNT = """
from netfleet.monitoring.models import Point
print(Point.objects.count())
"""


def stored_points(instance):
    """Points in the database now: read straight from the SQLite file (no process start-up, so the count is of
    the moment it is asked for), through `netfleet shell` on another database."""
    if "DATABASE_URL" not in instance.env:
        with contextlib.closing(sqlite3.connect(instance.data_dir / "netfleet.sqlite3", timeout=30)) as database:
            return database.execute("SELECT count(*) FROM monitoring_point").fetchone()[0]
    return int(instance.shell(POINT_COUNT).strip().splitlines()[-1])
