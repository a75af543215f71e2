"""Fleet data for the workloads, written through the ORM in a `netfleet shell` of the instance."""

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
