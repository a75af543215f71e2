# Fixtures shared by every app live in netfleet/testing/.
pytest_plugins = ["netfleet.testing.fixtures"]


def pytest_configure(config):
    from django.conf import settings

    # Real hashing costs ~100 ms per password by design; tests don't need that cost (live servers keep it).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
