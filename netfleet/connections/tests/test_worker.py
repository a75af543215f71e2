"""End to end with real processes: a Celery worker executes commands over SSH against the real sshd, and a
stand-in openwisp-config agent on the sshd host pulls its configuration from a live server after a push."""

import os
import signal
import subprocess
import textwrap
import time
from datetime import timedelta

import pytest
from django.test import override_settings

from netfleet.accounts.roles import Role
from netfleet.connections import services
from netfleet.connections.choices import CommandStatus, UpdateStrategy
from netfleet.connections.models import Command
from netfleet.controller import services as controller_services
from netfleet.controller.choices import ConfigStatus
from netfleet.controller.factories import TemplateFactory, make_device
from netfleet.controller.models import Config

from .helpers import CREDENTIALS, connect, device_url, ssh_credentials

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout=30, interval=0.2, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met after {timeout}s" + (f"; worker log:\n{log()}" if log else ""))


def finished(client, url, worker):
    """Poll the command's detail until it leaves `in-progress`; its body."""

    def done():
        body = client.get(url).json()
        return body if body["status"] != CommandStatus.IN_PROGRESS else None

    return wait_for(done, log=worker.log)


def add_credentials(client, organization, sshd):
    payload = {
        "name": "lab",
        "organization": str(organization.pk),
        "connector": "ssh",
        "auto_add": True,
        "params": {"username": sshd.user, "password": sshd.password, "port": sshd.port},
    }
    response = client.post(CREDENTIALS, payload)
    assert response.status_code == 201, response.content


def test_worker_runs_a_command_over_ssh(celery_worker, sshd, client_as, organization):
    device = make_device(organization, management_ip="127.0.0.1")
    add_credentials(client_as(Role.SITE_ADMIN)[0], organization, sshd)
    client, user = client_as(Role.OPERATOR)
    response = client.post(device_url(device, "command"), {"type": "custom", "input": {"command": "echo hi; exit 0"}})
    assert response.status_code == 202, response.content
    url = device_url(device, "command", response.json()["id"])

    body = finished(client, url, celery_worker)
    assert body["status"] == CommandStatus.SUCCESS, (body, celery_worker.log())
    assert (body["output"], body["exit_code"], body["requested_by"]) == ("hi\n", 0, str(user.pk))
    connection = client.get(device_url(device, "connection")).json()["results"][0]
    assert connection["is_working"] is True and connection["host_key"].startswith("ssh-ed25519 ")

    failing = client.post(device_url(device, "command"), {"type": "custom", "input": {"command": "echo no; exit 4"}})
    url = device_url(device, "command", failing.json()["id"])
    body = finished(client, url, celery_worker)
    assert (body["status"], body["exit_code"], body["output"]) == (CommandStatus.FAILED, 4, "no\n")
    listed = client.get(device_url(device, "command")).json()["results"]
    assert [item["id"] for item in listed] == [failing.json()["id"], response.json()["id"]]


def test_sweep_fails_the_command_of_a_killed_worker(celery_worker, sshd, client_as, organization):
    device = make_device(organization, management_ip="127.0.0.1")
    add_credentials(client_as(Role.SITE_ADMIN)[0], organization, sshd)
    client = client_as(Role.OPERATOR)[0]
    response = client.post(device_url(device, "command"), {"type": "custom", "input": {"command": "sleep 60"}})
    url = device_url(device, "command", response.json()["id"])
    wait_for(lambda: client.get(url).json()["started"])  # the worker is running it
    celery_worker.kill()

    command = Command.objects.get(pk=response.json()["id"])
    assert services.fail_stale_commands(now=command.deadline) == 0  # not before its deadline
    assert services.fail_stale_commands(now=command.deadline + timedelta(seconds=1)) == 1
    body = client.get(url).json()
    assert body["status"] == CommandStatus.FAILED and body["finished"]
    assert "worker" in body["failure_reason"]


def test_template_change_is_pushed_without_the_periodic_scan(celery_worker, sshd, client_as, organization):
    lan = {"interfaces": [{"name": "lan0", "type": "ethernet", "mtu": 1500}]}
    template = TemplateFactory(organization=organization, config=lan)
    device = make_device(organization, management_ip="127.0.0.1", templates=[template])
    Config.objects.filter(device=device).update(status=ConfigStatus.APPLIED)
    credentials = ssh_credentials(organization, sshd)
    connection = connect(device, credentials, update_strategy=UpdateStrategy.LINUX_SSH)
    client = client_as(Role.NETWORK_ADMIN)[0]
    # no beat runs here: only the scan queued by the change can push
    with override_settings(NETFLEET_CONNECTIONS_PUSH_DEBOUNCE=1):
        for mtu in (1400, 1300):  # two edits within the debounce period: one push, of the last
            config = {"interfaces": [{"name": "lan0", "type": "ethernet", "mtu": mtu}]}
            response = client.patch(f"/api/v1/controller/template/{template.pk}/", {"config": config})
            assert response.status_code == 200, response.content
    connection.refresh_from_db()
    assert connection.push_due and connection.push_checksum == Config.objects.get(device=device).checksum

    wait_for(lambda: Config.objects.get(device=device).status == ConfigStatus.APPLIED, 20, log=celery_worker.log)
    network = (sshd.home / "netfleet-config" / "current" / "etc" / "config" / "network").read_text()
    assert "option mtu '1300'" in network
    log = celery_worker.log()
    assert _received(log, "schedule_config_pushes") == 2  # a scan queued by each edit
    assert _received(log, "push_configs") == 1  # and one push
    connection.refresh_from_db()
    assert (connection.is_working, connection.push_due) == (True, None)


def _received(log, task):
    return sum(1 for line in log.splitlines() if f"tasks.{task}[" in line and " received" in line)


AGENT = textwrap.dedent(
    """\
    #!/bin/sh
    # stand-in for openwisp-config: on USR1, pull the configuration and report it applied
    poll() {
        curl -sf -o pulled.tar.gz "$URL/controller/download-config/$ID/?key=$KEY" \\
        && curl -sf --data "key=$KEY&status=applied" "$URL/controller/report-status/$ID/" >> agent.log
        echo "USR1 handled" >> agent.log
    }
    trap poll USR1
    echo $$ > agent.pid
    while true; do sleep 1 & wait $!; done
    """
)


def test_openwrt_push_signals_the_agent_which_pulls_and_reports(sshd, live_server, organization):
    template = TemplateFactory(organization=organization, config={"interfaces": [{"name": "lan0", "type": "ethernet"}]})
    device = make_device(organization, management_ip="127.0.0.1", templates=[template])
    Config.objects.filter(device=device).update(status=ConfigStatus.APPLIED)
    credentials = services.create_credentials(
        organization=organization,
        name="lab",
        params={"username": sshd.user, "port": sshd.port},
        password=sshd.password,
        auto_add=True,
    )
    connection = device.connections.get(credentials=credentials)
    workdir = sshd.home / f"agent-{device.pk.hex[:8]}"
    sshd.run_as_user("mkdir", "-p", str(workdir), check=True)
    script = workdir / "agent.sh"
    script.write_text(AGENT)
    env = {"URL": live_server.url, "ID": device.pk.hex, "KEY": device.key, "PATH": os.environ["PATH"]}
    prefix = ["runuser", "-u", sshd.user, "--"] if os.geteuid() == 0 else []
    agent = subprocess.Popen([*prefix, "env", *(f"{k}={v}" for k, v in env.items()), "sh", str(script)], cwd=workdir)
    try:
        wait_for(lambda: (workdir / "agent.pid").exists() and (workdir / "agent.pid").read_text().strip(), 10)
        with override_settings(
            NETFLEET_CONNECTIONS_PUSH_DEBOUNCE=0, NETFLEET_CONNECTIONS_OPENWRT_PID_FILE=str(workdir / "agent.pid")
        ):
            controller_services.update_template(
                template=template, config={"interfaces": [{"name": "lan0", "type": "ethernet", "mtu": 1400}]}
            )
            assert Config.objects.get(device=device).status == ConfigStatus.MODIFIED
            due = services.schedule_config_pushes()
            assert due == [connection.pk]
            services.push_configs(connection_ids=due)
        wait_for(lambda: Config.objects.get(device=device).status == ConfigStatus.APPLIED, 15)
        log = (workdir / "agent.log").read_text()
        assert "USR1 handled" in log and "current-status: applied" in log
        assert (workdir / "pulled.tar.gz").stat().st_size > 0
        connection.refresh_from_db()
        assert connection.is_working is True and connection.failure_reason == ""
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)
