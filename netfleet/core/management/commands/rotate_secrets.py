from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connections, router, transaction

from netfleet.core import crypto
from netfleet.core.fields import EncryptedTextField


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret at rest under the first key of NETFLEET_SECRET_KEYS. Rotate keys by prepending "
        "a new key, running this command, then removing the old key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size, **options):
        total = 0
        for model in apps.get_models():
            fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            count = self._rotate_model(model, fields, batch_size)
            total += count
            self.stdout.write(f"{model._meta.label}: {count} value(s) re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"rotate_secrets: {total} value(s) re-encrypted"))

    def _rotate_model(self, model, fields, batch_size):
        # Works on the stored ciphertexts directly: the field's Python value is plaintext.
        connection = connections[router.db_for_write(model)]
        table = connection.ops.quote_name(model._meta.db_table)
        pk = connection.ops.quote_name(model._meta.pk.column)
        count = 0
        for field in fields:
            column = connection.ops.quote_name(field.column)
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute(f"SELECT {pk}, {column} FROM {table} WHERE {column} IS NOT NULL AND {column} <> ''")  # noqa: S608 - quoted identifiers
                rows = cursor.fetchall()
                for start in range(0, len(rows), batch_size):
                    for row_pk, token in rows[start : start + batch_size]:
                        cursor.execute(
                            f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",  # noqa: S608 - quoted identifiers
                            [crypto.rotate(token), row_pk],
                        )
                        count += 1
        return count
