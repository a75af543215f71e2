from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "netfleet.core"
    label = "core"
    verbose_name = "netfleet core"

    def ready(self):
        from django.db.backends.signals import connection_created

        from netfleet.core import schema  # noqa: F401 - registers the OpenAPI extensions

        connection_created.connect(use_sqlite_wal, dispatch_uid="netfleet-sqlite-wal")


def use_sqlite_wal(sender, connection, **kwargs):
    """Put an SQLite database in WAL mode (readers never block the writer). The mode is stored in the file, so
    this writes only the first time; later connections just read it."""
    if (
        connection.vendor != "sqlite"
        or connection.settings_dict["NAME"] in (":memory:", "")
        or "mode=memory" in str(connection.settings_dict["NAME"])
    ):
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0].lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
