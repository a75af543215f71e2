import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "netfleet.settings")

_django = get_wsgi_application()

from django.conf import settings  # noqa: E402

from netfleet.controller.agent import cached_checksum  # noqa: E402 - needs the apps loaded above
from netfleet.monitoring import ingest  # noqa: E402
from netfleet.monitoring.api.views import ingest_wsgi  # noqa: E402

INGEST_PREFIX = "/api/v1/monitoring/device/"

if settings.NETFLEET_MONITORING_SPOOL:  # `netfleet serve`, which runs the monitoring writer for these workers
    ingest.use_spool()


def application(environ, start_response):
    """Django's WSGI handler, answering a complete body as a one-item list.

    Django hands the server its response object to iterate; granian then iterates it from Rust, one call back
    into Python per chunk plus `close()`, which cost more than the whole view on the agent's checksum poll. A
    list lets the server send the bytes at once (PEP 3333 allows both). Streaming responses (file downloads,
    firmware images) are still passed through as iterators.

    The fleet's two hottest device-facing requests are answered below Django, as Django would answer them: the
    agent's cached checksum polls and the devices' metric POSTs (each returns None for what only Django answers).
    """
    path = environ.get("PATH_INFO", "")
    if path.startswith("/controller/"):
        answer = cached_checksum(environ, start_response)  # the fleet's checksum polls, from the cache
        if answer is not None:
            return answer
    elif path.startswith(INGEST_PREFIX) and environ.get("REQUEST_METHOD") == "POST":
        answer = ingest_wsgi(environ, start_response)  # the devices' metric documents (?key=)
        if answer is not None:
            return answer
    response = _django(environ, start_response)
    if getattr(response, "streaming", True):
        return response
    try:
        return [response.content]
    finally:
        response.close()  # Django's request_finished (closes old database connections and caches)
