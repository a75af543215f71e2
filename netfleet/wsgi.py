import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "netfleet.settings")

_django = get_wsgi_application()

from netfleet.controller.agent import cached_checksum  # noqa: E402 - needs the apps loaded above


def application(environ, start_response):
    """Django's WSGI handler, answering a complete body as a one-item list.

    Django hands the server its response object to iterate; granian then iterates it from Rust, one call back
    into Python per chunk plus `close()`, which cost more than the whole view on the agent's checksum poll. A
    list lets the server send the bytes at once (PEP 3333 allows both). Streaming responses (file downloads,
    firmware images) are still passed through as iterators.
    """
    if environ.get("PATH_INFO", "").startswith("/controller/"):
        answer = cached_checksum(environ, start_response)  # the fleet's checksum polls, from the cache
        if answer is not None:
            return answer
    response = _django(environ, start_response)
    if getattr(response, "streaming", True):
        return response
    try:
        return [response.content]
    finally:
        response.close()  # Django's request_finished (closes old database connections and caches)
