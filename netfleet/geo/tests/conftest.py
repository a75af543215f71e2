"""Geo fixtures: media stored in the test's own directory, clients by role."""

import pytest

from netfleet.accounts.roles import Role


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def operator(client_as):
    return client_as(Role.OPERATOR)[0]


@pytest.fixture
def viewer(client_as):
    return client_as(Role.VIEWER)[0]
