"""`netfleet simulate routeros --port 8728`: a RouterOS REST simulator, to try netfleet without a router."""

from django.core.management.base import BaseCommand, CommandError

from netfleet.testing.routeros import RouterOSSimulator


class Command(BaseCommand):
    requires_system_checks = []  # a simulator needs neither the database nor the URL configuration
    help = "Run a protocol simulator in the foreground (routeros: the RouterOS v7 REST API under /rest)."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=["routeros"], help="what to simulate")
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8080, help="port to listen on (0: any free port)")
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="", help="the router password (default: empty, as RouterOS)")
        parser.add_argument("--identity", default="MikroTik", help="the router's system identity")
        parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before every answer")

    def handle(self, *args, **options):
        if not 0 <= options["port"] <= 65535:
            raise CommandError("--port must be between 0 and 65535")
        simulator = RouterOSSimulator(
            username=options["username"], password=options["password"], host=options["host"],
            port=options["port"], delay=options["delay"], identity=options["identity"],
        )  # fmt: skip
        simulator.start()
        self.stdout.write(
            f"RouterOS simulator on {simulator.url}/rest/ (user {options['username']!r}); Ctrl-C to stop",
        )
        self.stdout.flush()
        try:
            simulator._thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            simulator.stop()
