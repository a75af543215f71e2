"""Secrets at rest: generated keys, Fernet-encrypted columns and key rotation."""

import io
import json
import stat

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from netfleet.accounts.factories import UserFactory
from netfleet.accounts.models import User
from netfleet.core.secrets import load_or_create_local_secrets

TOTP_SECRET = "JBSWY3DPEHPK3PXP"


def raw_column(user):
    """The stored value, read past the field's decryption."""
    pk = User._meta.pk.get_db_prep_value(user.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT mfa_secret FROM accounts_user WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_local_secrets_are_generated_once_and_private(tmp_path):
    first = load_or_create_local_secrets(tmp_path)
    second = load_or_create_local_secrets(tmp_path)
    assert first == second
    assert len(first["secret_key"]) >= 50
    Fernet(first["secret_keys"][0])  # a usable Fernet key
    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == first


def test_two_data_dirs_never_share_secrets(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert load_or_create_local_secrets(tmp_path / "a") != load_or_create_local_secrets(tmp_path / "b")


@pytest.mark.django_db
def test_secret_is_encrypted_in_the_database():
    user = UserFactory(mfa_secret=TOTP_SECRET)
    stored = raw_column(user)
    assert TOTP_SECRET not in stored
    from django.conf import settings

    assert Fernet(settings.NETFLEET_SECRET_KEYS[0]).decrypt(stored.encode()).decode() == TOTP_SECRET
    assert User.objects.get(pk=user.pk).mfa_secret == TOTP_SECRET


@pytest.mark.django_db
def test_rotation_reencrypts_under_the_new_key(settings):
    old_key = settings.NETFLEET_SECRET_KEYS[0]
    user = UserFactory(mfa_secret=TOTP_SECRET)
    untouched = UserFactory(mfa_secret="")
    new_key = Fernet.generate_key().decode()

    with override_settings(NETFLEET_SECRET_KEYS=[new_key, old_key]):
        assert User.objects.get(pk=user.pk).mfa_secret == TOTP_SECRET  # old ciphertexts still readable
        call_command("rotate_secrets", stdout=io.StringIO())

    stored = raw_column(user)
    assert Fernet(new_key).decrypt(stored.encode()).decode() == TOTP_SECRET
    with pytest.raises(InvalidToken):
        Fernet(old_key).decrypt(stored.encode())
    assert raw_column(untouched) == ""
    with override_settings(NETFLEET_SECRET_KEYS=[new_key]):  # the old key can now be retired
        assert User.objects.get(pk=user.pk).mfa_secret == TOTP_SECRET
