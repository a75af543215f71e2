"""The embedded SQLite backend: a write transaction holds the host-wide writer file lock until it ends."""

import fcntl

import pytest
from django.db.utils import ConnectionHandler


@pytest.fixture
def sqlite(tmp_path, django_db_blocker):
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "netfleet.core.db.sqlite",
                "NAME": str(tmp_path / "netfleet.sqlite3"),
                "OPTIONS": {"transaction_mode": "IMMEDIATE"},
            }
        }
    )
    connection = handler["default"]
    with django_db_blocker.unblock():  # a database of its own, not the suite's
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE item (name TEXT)")
        yield connection, tmp_path / "netfleet.sqlite3-writer.lock"
        connection.close()


def lock_is_free(path):
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_a_write_transaction_holds_the_lock_until_commit(sqlite):
    connection, lock = sqlite
    # what transaction.atomic() does on SQLite (this connection is not one of the project's)
    connection._start_transaction_under_autocommit()
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO item VALUES ('a')")
    assert not lock_is_free(lock)  # another process's writer would wait here, in the kernel
    connection.commit()
    assert lock_is_free(lock)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM item")
        assert cursor.fetchall() == [("a",)]


def test_a_rolled_back_transaction_releases_it(sqlite):
    connection, lock = sqlite
    connection._start_transaction_under_autocommit()
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO item VALUES ('b')")
    assert not lock_is_free(lock)
    connection.rollback()
    assert lock_is_free(lock)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM item")
        assert cursor.fetchone() == (0,)
