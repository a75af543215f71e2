"""Shared helpers of the firmware tests."""

API = "/api/v1/firmware-upgrader"
CATEGORIES = f"{API}/category/"
BUILDS = f"{API}/build/"
OPERATIONS = f"{API}/upgrade-operation/"
BATCHES = f"{API}/batch-upgrade-operation/"


def url(base, pk=None, *rest):
    path = base if pk is None else f"{base}{pk}/"
    for part in rest:
        path += f"{part}/"
    return path


def images_url(build, pk=None):
    return url(f"{BUILDS}{getattr(build, 'pk', build)}/image/", pk)


def device_url(device, what):
    return f"{API}/device/{device.pk}/{what}/"


def error_of(response, code):
    assert response.status_code == code, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["request_id"]
    return error


def fields_of(error):
    return {item["field"]: item["message"] for item in error.get("details") or ()}


def ids(response):
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    return [item["id"] for item in body["results"]]
