"""Model fields shared by every app."""

from django.db import models

from netfleet.core import crypto


class EncryptedTextField(models.TextField):
    """A secret stored Fernet-encrypted; Python code sees plaintext. Not searchable (ciphertexts are salted)."""

    description = "Text encrypted at rest"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(value)

    def get_lookup(self, lookup_name):
        if lookup_name not in ("isnull", "exact"):
            return None
        return super().get_lookup(lookup_name)
