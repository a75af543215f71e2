"""Commands and configuration pushes against a real OpenSSH server (the `sshd` fixture), run in-process."""

import time
from datetime import timedelta

import asyncssh
import pytest
from django.test import override_settings
from django.utils import timezone

from netfleet.connections import services
from netfleet.connections.choices import CommandStatus, UpdateStrategy
from netfleet.connections.models import Command, DeviceConnection
from netfleet.controller import services as controller_services
from netfleet.controller.choices import ConfigStatus
from netfleet.controller.factories import TemplateFactory, make_device
from netfleet.controller.models import Config
from netfleet.testing.servers import free_port

from .helpers import connect, ssh_credentials

pytestmark = pytest.mark.django_db


@pytest.fixture
def device(organization):
    return make_device(organization, management_ip="127.0.0.1")


def run(device, shell, connection=None):
    command = services.run_command(
        device=device, type="custom", input={"command": shell}, requested_by=None, connection=connection
    )
    return services.execute_command(command=services.command_to_run(command.pk))


def test_custom_command_output_exit_code_and_host_key_trusted_on_first_use(sshd, organization, device):
    connection = connect(device, ssh_credentials(organization, sshd))
    command = run(device, "echo hello from $(id -un); echo oops >&2")
    assert command.status == CommandStatus.SUCCESS and command.exit_code == 0
    assert command.output == f"hello from {sshd.user}\noops\n"
    assert command.started and command.finished and command.failure_reason == ""
    connection.refresh_from_db()
    assert connection.is_working is True and connection.last_attempt and connection.failure_reason == ""
    expected = (sshd.host_key.with_suffix(".pub")).read_text().split()[:2]
    assert connection.host_key.split()[:2] == expected
    # verified from now on: the same key keeps working
    assert run(device, "true").status == CommandStatus.SUCCESS


def test_failing_command_is_failed_with_output_and_exit_code(sshd, organization, device):
    connect(device, ssh_credentials(organization, sshd))
    command = run(device, "echo before failing; ls /no/such/path; exit 7")
    assert command.status == CommandStatus.FAILED and command.exit_code == 7
    assert "before failing" in command.output and "/no/such/path" in command.output
    assert command.failure_reason == "Exited with code 7"
    stored = Command.objects.get(pk=command.pk)
    assert (stored.status, stored.exit_code, stored.output) == (command.status, 7, command.output)


def test_private_key_login(sshd, organization, device):
    connect(device, ssh_credentials(organization, sshd, password="", private_key=sshd.client_key))
    assert run(device, "echo key").output == "key\n"


def test_unreachable_host(sshd, organization, device):
    connection = connect(device, ssh_credentials(organization, sshd, port=free_port()))
    command = run(device, "true")
    assert command.status == CommandStatus.FAILED and "Connection refused" in command.failure_reason
    connection.refresh_from_db()
    assert connection.is_working is False and "Connection refused" in connection.failure_reason


def test_wrong_password(sshd, organization, device):
    connection = connect(device, ssh_credentials(organization, sshd, password="not-the-password"))
    command = run(device, "true")
    assert command.status == CommandStatus.FAILED
    assert command.failure_reason.startswith("Authentication failed") and sshd.user in command.failure_reason
    connection.refresh_from_db()
    assert connection.is_working is False and connection.failure_reason.startswith("Authentication failed")


def test_changed_host_key(sshd, organization, device):
    other_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    connection = connect(device, ssh_credentials(organization, sshd), host_key=other_key)
    command = run(device, "true")
    assert command.status == CommandStatus.FAILED
    assert command.failure_reason.startswith("Host key verification failed") and "changed" in command.failure_reason
    connection.refresh_from_db()
    assert connection.is_working is False and connection.host_key == other_key  # never silently replaced


def test_device_without_address(sshd, organization):
    device = make_device(organization)
    connect(device, ssh_credentials(organization, sshd))
    command = run(device, "true")
    assert command.status == CommandStatus.FAILED and "IP address" in command.failure_reason


@override_settings(NETFLEET_CONNECTIONS_OUTPUT_LIMIT=1000)
def test_output_is_capped(sshd, organization, device):
    connect(device, ssh_credentials(organization, sshd))
    command = run(device, "head -c 300000 /dev/zero | tr '\\0' a; echo; echo done")
    assert command.status == CommandStatus.SUCCESS
    assert command.output.startswith("a" * 1000) and command.output.endswith("[output truncated at 1000 bytes]")
    assert len(command.output) < 1100


def test_exec_timeout_stops_the_command(sshd, organization, device):
    connect(device, ssh_credentials(organization, sshd, exec_timeout=1))
    started = time.monotonic()
    command = run(device, "echo started; sleep 20")
    assert time.monotonic() - started < 10
    assert command.status == CommandStatus.FAILED and command.failure_reason.startswith("Timed out after 1 s")
    assert command.output == "started\n"


def test_change_password_feeds_the_secret_on_stdin(sshd, organization, device):
    connect(device, ssh_credentials(organization, sshd))
    command = services.run_command(
        device=device,
        type="change_password",
        input={"password": "n3w-Secret!", "confirm_password": "n3w-Secret!"},
        requested_by=None,
    )
    command = services.execute_command(command=services.command_to_run(command.pk))
    # an unprivileged `passwd` asks for the current password first: it fails, but received our input
    assert command.status == CommandStatus.FAILED and command.exit_code != 0
    assert "n3w-Secret!" not in command.output


def test_redelivered_command_is_not_run_twice(organization, device):
    command = Command.objects.create(device=device, type="custom", input={"command": "true"}, started=timezone.now())
    assert services.command_to_run(command.pk) is None
    command.refresh_from_db()
    assert command.status == CommandStatus.FAILED and command.failure_reason.startswith("Interrupted")


def test_sweep_fails_stale_commands(organization, device):
    now = timezone.now()
    stale = Command.objects.create(device=device, type="reboot", deadline=now - timedelta(seconds=1))
    fresh = Command.objects.create(device=device, type="reboot", deadline=now + timedelta(minutes=5))
    done = Command.objects.create(device=device, type="reboot", deadline=now - timedelta(seconds=1), status="success")
    assert services.fail_stale_commands(now=now) == 1
    stale.refresh_from_db(), fresh.refresh_from_db(), done.refresh_from_db()
    assert stale.status == CommandStatus.FAILED and "worker" in stale.failure_reason and stale.finished == now
    assert (fresh.status, done.status) == (CommandStatus.IN_PROGRESS, CommandStatus.SUCCESS)


# --- configuration push --------------------------------------------------------------------------------------


LAN = {"interfaces": [{"name": "lan0", "type": "ethernet", "mtu": 1500}]}


def change_template(template, mtu):
    controller_services.update_template(
        template=template, config={"interfaces": [{"name": "lan0", "type": "ethernet", "mtu": mtu}]}
    )


@pytest.fixture
def linux_device(sshd, organization):
    template = TemplateFactory(organization=organization, config=LAN)
    device = make_device(organization, management_ip="127.0.0.1", templates=[template])
    Config.objects.filter(device=device).update(status=ConfigStatus.APPLIED)
    connection = connect(device, ssh_credentials(organization, sshd), update_strategy=UpdateStrategy.LINUX_SSH)
    return device, template, connection


def test_pushes_are_debounced(linux_device):
    device, template, connection = linux_device
    now = timezone.now()
    assert services.schedule_config_pushes(now=now) == []  # applied: nothing to push
    change_template(template, 1400)
    assert services.schedule_config_pushes(now=now) == []  # armed, due after the debounce
    change_template(template, 1300)  # another edit within the window re-arms it
    assert services.schedule_config_pushes(now=now + timedelta(seconds=3)) == []
    assert services.schedule_config_pushes(now=now + timedelta(seconds=6)) == []
    assert services.schedule_config_pushes(now=now + timedelta(seconds=9)) == [connection.pk]
    assert services.schedule_config_pushes(now=now + timedelta(seconds=20)) == []  # pushed once
    DeviceConnection.objects.filter(pk=connection.pk).update(is_working=False)
    change_template(template, 1200)
    assert services.schedule_config_pushes(now=now + timedelta(seconds=60)) == []  # unreachable: skipped


def test_linux_push_uploads_unpacks_and_applies(sshd, linux_device, tmp_path):
    device, template, connection = linux_device
    directory = f"netfleet-config-{device.pk.hex[:8]}"
    apply = "cat etc/config/network > ../applied.txt && echo applied"
    with override_settings(
        NETFLEET_CONNECTIONS_PUSH_DEBOUNCE=0,
        NETFLEET_CONNECTIONS_LINUX_CONFIG_DIR=directory,
        NETFLEET_CONNECTIONS_LINUX_APPLY_COMMAND=apply,
    ):
        change_template(template, 1400)
        assert Config.objects.get(device=device).status == ConfigStatus.MODIFIED
        due = services.schedule_config_pushes()
        assert due == [connection.pk]
        services.push_configs(connection_ids=due)
    config = Config.objects.get(device=device)
    assert config.status == ConfigStatus.APPLIED and config.error_reason == ""
    applied = (sshd.home / directory / "applied.txt").read_text()
    assert "option mtu '1400'" in applied
    assert (sshd.home / directory / "current" / "etc" / "config" / "network").exists()
    assert not (sshd.home / directory / "configuration.tar.gz.part").exists()
    connection.refresh_from_db()
    assert connection.is_working is True and connection.host_key


def test_linux_push_apply_failure_sets_error(sshd, linux_device):
    device, template, connection = linux_device
    with override_settings(
        NETFLEET_CONNECTIONS_LINUX_CONFIG_DIR=f"netfleet-config-{device.pk.hex[:8]}",
        NETFLEET_CONNECTIONS_LINUX_APPLY_COMMAND="echo 'uci: invalid option' >&2; exit 3",
    ):
        change_template(template, 1400)
        services.push_configs(connection_ids=[connection.pk])
    config = Config.objects.get(device=device)
    assert config.status == ConfigStatus.ERROR and "uci: invalid option" in config.error_reason


def test_push_to_unreachable_device_marks_connection(sshd, organization):
    device = make_device(organization, management_ip="127.0.0.1")
    connection = connect(device, ssh_credentials(organization, sshd, port=free_port()))
    services.push_configs(connection_ids=[connection.pk])
    connection.refresh_from_db()
    assert connection.is_working is False and "refused" in connection.failure_reason
    assert Config.objects.get(device=device).status == ConfigStatus.MODIFIED
