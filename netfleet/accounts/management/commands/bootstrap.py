import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from netfleet.accounts.models import Membership, Organization, User
from netfleet.accounts.roles import Role


class Command(BaseCommand):
    help = "Create the default organization and the `admin` superuser (idempotent)."

    def handle(self, *args, **options):
        import os

        with transaction.atomic():
            organization, _ = Organization.objects.get_or_create(slug="default", defaults={"name": "Default"})
            if User.objects.filter(username="admin").exists():
                self.stdout.write("bootstrap: admin already exists; nothing to do")
                return
            password = os.environ.get("NETFLEET_ADMIN_PASSWORD")
            generated = not password
            if generated:
                password = secrets.token_urlsafe(18)
            admin = User.objects.create_superuser(
                username="admin", email=settings.NETFLEET_ADMIN_EMAIL, password=password
            )
            Membership.objects.create(user=admin, organization=organization, role=Role.ORG_ADMIN)
        self.stdout.write(f"bootstrap: created superuser admin <{admin.email}> in organization 'default'")
        if generated:
            # printed once, on this run only; it is stored hashed
            self.stdout.write(f"bootstrap: admin password: {password}")
