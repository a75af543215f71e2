"""NetJSON DeviceMonitoring: the schema ingested documents must satisfy, and the metrics derived from them.

Pure functions (no database): `validate_document` raises `InvalidDocument` naming the JSON path of the first
problems; `derive_points` turns a valid document into time series points the way the reference system does.
"""

from dataclasses import dataclass

import fastjsonschema
from jsonschema import Draft7Validator

from netfleet.core.exceptions import NetfleetError

_INT = {"type": "integer"}
_COUNTER = {"type": "integer", "minimum": 0}
_NUMBER = {"type": "number"}
_STRING = {"type": "string"}
_BOOL = {"type": "boolean"}

_SIGNAL_VALUES = {
    "type": "object",
    "properties": {name: _NUMBER for name in ("rssi", "rsrp", "rsrq", "snr", "sinr", "ecio")},
}

_CLIENT = {
    "type": "object",
    "required": ["mac"],
    "properties": {
        "mac": {"type": "string", "pattern": "^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$"},
        "vendor": _STRING,
        "signal": _NUMBER,
        "noise": _NUMBER,
        "aid": _INT,
        **{flag: _BOOL for flag in ("assoc", "authorized", "authenticated", "preauth", "wds", "wmm", "wps", "ht")},
        **{flag: _BOOL for flag in ("vht", "he", "mfp")},
    },
}

_INTERFACE = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "type": _STRING,
        "uptime": _COUNTER,
        "up": _BOOL,
        "mac": _STRING,
        "mtu": _INT,
        "addresses": {"type": "array", "items": {"type": "object"}},
        "statistics": {
            "type": "object",
            "properties": {
                name: _COUNTER
                for name in (
                    "rx_bytes",
                    "tx_bytes",
                    "rx_packets",
                    "tx_packets",
                    "rx_errors",
                    "tx_errors",
                    "rx_dropped",
                    "tx_dropped",
                    "multicast",
                    "collisions",
                )
            },
        },
        "wireless": {
            "type": "object",
            "properties": {
                "ssid": _STRING,
                "mode": _STRING,
                "channel": _INT,
                "frequency": _INT,
                "tx_power": _NUMBER,
                "noise": _NUMBER,
                "signal": _NUMBER,
                "country": _STRING,
                "htmode": _STRING,
                "clients": {"type": "array", "items": _CLIENT},
            },
        },
        "mobile": {
            "type": "object",
            "properties": {
                "imei": _STRING,
                "operator_name": _STRING,
                "operator_code": _STRING,
                "connection_status": _STRING,
                "power_status": _STRING,
                "signal": {
                    "type": "object",
                    "properties": {tech: _SIGNAL_VALUES for tech in ("gsm", "umts", "lte", "5g")},
                },
            },
        },
    },
}

SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "NetJSON DeviceMonitoring",
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["DeviceMonitoring"]},
        "general": {
            "type": "object",
            "properties": {"hostname": _STRING, "local_time": _COUNTER, "uptime": _COUNTER},
        },
        "resources": {
            "type": "object",
            "properties": {
                "load": {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 3, "maxItems": 3},
                "cpus": {"type": "integer", "minimum": 1},
                "memory": {
                    "type": "object",
                    "required": ["total", "free"],
                    "properties": {
                        "total": {"type": "integer", "minimum": 1},
                        **{name: _COUNTER for name in ("free", "buffered", "shared", "cached", "available")},
                    },
                },
                "swap": {"type": "object", "properties": {"total": _COUNTER, "free": _COUNTER}},
                "disk": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["used_bytes", "size_bytes"],
                        "properties": {
                            "used_bytes": _COUNTER,
                            "size_bytes": _COUNTER,
                            "available_bytes": _COUNTER,
                            "used_percent": _NUMBER,
                            "mount_point": _STRING,
                            "filesystem": _STRING,
                        },
                    },
                },
            },
        },
        "interfaces": {"type": "array", "items": _INTERFACE},
        "neighbors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"ip_address": _STRING, "mac_address": _STRING, "interface": _STRING, "state": _STRING},
            },
        },
        "dhcp_leases": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["mac", "ip"],
                "properties": {
                    "expiry": _COUNTER,
                    "mac": _STRING,
                    "ip": _STRING,
                    "client_name": _STRING,
                    "client_id": _STRING,
                },
            },
        },
    },
}

# The compiled validator accepts a valid document in a fraction of jsonschema's time (the ingest hot path);
# jsonschema, on the same schema, explains an invalid one with every JSON path.
_is_valid = fastjsonschema.compile(SCHEMA)
_validator = Draft7Validator(SCHEMA)
MAX_REPORTED_ERRORS = 10


class InvalidDocument(NetfleetError):
    """A document that is not valid NetJSON DeviceMonitoring: 400 (as the reference system answers)."""

    status_code = 400
    default_message = "Invalid NetJSON DeviceMonitoring document"


def json_path(path):
    """deque(['interfaces', 0, 'statistics', 'rx_bytes']) -> 'interfaces[0].statistics.rx_bytes'."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _field(path):
    return f"body.{json_path(path)}" if path else "body"


def validate_document(document):
    try:
        _is_valid(document)
        return
    except fastjsonschema.JsonSchemaException:
        pass
    errors = sorted(_validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    if not errors:
        return
    details = [
        {"field": _field(error.absolute_path), "message": error.message, "type": error.validator}
        for error in errors[:MAX_REPORTED_ERRORS]
    ]
    first = details[0]
    raise InvalidDocument(
        f"Invalid NetJSON DeviceMonitoring document: {first['field']}: {first['message']}", details=details
    )


# --- derived metrics ---------------------------------------------------------------------------------------

COUNTER_METRIC = "traffic_counter"  # raw interface byte counters: late documents take their deltas from them
ACCESS_TECHNOLOGIES = {"gsm": 2, "umts": 3, "lte": 4, "5g": 5}  # value stored: the generation
SIGNAL_STRENGTH = ("rssi", "rsrp")
SIGNAL_QUALITY = ("rsrq", "snr", "sinr", "ecio")


@dataclass(frozen=True, slots=True)
class Derived:
    """What a document yields: points as (metric, tag, field, value), the raw traffic counters by interface,
    the health inputs (cpu, memory, disk) and the WiFi clients by interface."""

    points: list
    counters: dict
    health: dict
    clients: dict


def traffic_delta(value, previous):
    """A counter's increase since the previous reading; after a reset (the value went down) it counts whole.
    Without a previous reading the counter counts from zero (as the reference system does)."""
    if previous is None or value < previous:
        return value
    return value - previous


def memory_percent(memory):
    """Percent used: from `available` when the device reports it (and it exceeds `free`, i.e. it is meaningful),
    else from free + buffered."""
    total = memory["total"]
    available = memory.get("available")
    if available is not None and available > memory["free"]:
        unused = available
    else:
        unused = memory["free"] + memory.get("buffered", 0)
    return round(100 * (1 - unused / total), 2)


def derive(document, previous_counters):
    """Points and health inputs of a valid document. `previous_counters`: {interface: [rx, tx]} of the
    document before it (deltas are taken against it)."""
    points, health, counters, clients = [], {}, {}, {}
    resources = document.get("resources") or {}
    load, cpus = resources.get("load"), resources.get("cpus")
    if load and cpus:
        health["cpu"] = round(100 * load[0] / cpus, 2)
        points.append(("cpu", "", "cpu_usage", health["cpu"]))
    memory = resources.get("memory")
    if memory:
        health["memory"] = memory_percent(memory)
        points.append(("memory", "", "percent_used", health["memory"]))
    disks = resources.get("disk") or []
    size = sum(disk["size_bytes"] for disk in disks)
    if size:
        health["disk"] = round(100 * sum(disk["used_bytes"] for disk in disks) / size, 2)
        points.append(("disk", "", "used_disk", health["disk"]))

    for interface in document.get("interfaces") or []:
        name = interface["name"]
        statistics = interface.get("statistics") or {}
        if "rx_bytes" in statistics and "tx_bytes" in statistics:
            rx, tx = statistics["rx_bytes"], statistics["tx_bytes"]
            previous = previous_counters.get(name) or (None, None)
            counters[name] = [rx, tx]
            points += [
                ("traffic", name, "rx_bytes", traffic_delta(rx, previous[0])),
                ("traffic", name, "tx_bytes", traffic_delta(tx, previous[1])),
                # the raw counters, under their own metric so traffic charts never read them
                (COUNTER_METRIC, name, "rx_counter", rx),
                (COUNTER_METRIC, name, "tx_counter", tx),
            ]
        wireless = interface.get("wireless")
        if wireless is not None and "clients" in wireless:
            macs = {client["mac"].upper().replace("-", ":"): client for client in wireless["clients"]}
            clients[name] = {"ssid": wireless.get("ssid", ""), "clients": macs}
            points.append(("wifi_clients", name, "clients", len(macs)))
        signal = ((interface.get("mobile") or {}).get("signal")) or {}
        for tech, generation in sorted(ACCESS_TECHNOLOGIES.items(), key=lambda item: -item[1]):
            values = signal.get(tech)
            if not values:
                continue
            points.append(("access_tech", name, "access_tech", generation))
            for field in SIGNAL_STRENGTH:
                if field in values:
                    points.append(("signal_strength", name, field, float(values[field])))
            for field in SIGNAL_QUALITY:
                if field in values:
                    points.append(("signal_quality", name, field, float(values[field])))
            break  # the newest technology the modem reports is the one in use
    return Derived(points=points, counters=counters, health=health, clients=clients)
