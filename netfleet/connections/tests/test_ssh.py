"""Commands and configuration pushes against a real OpenSSH server (the `sshd` fixture), run in-process."""

import time
from datetime import timedelta

import asyncssh
import pytest
import time_machine
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from netfleet.accounts.roles import Role
from netfleet.connections import hooks, services
from netfleet.connections.choices import CommandStatus, UpdateStrategy
from netfleet.connections.models import Command, DeviceConnection
from netfleet.controller import extensions
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


def queue(device, shell):
    return services.run_command(device=device, type="custom", input={"command": shell}, requested_by=None)


def test_waiting_commands_run_concurrently_in_one_batch(sshd, organization):
    credentials = ssh_credentials(organization, sshd)
    devices = [make_device(organization, management_ip="127.0.0.1") for _ in range(5)]
    for device in devices:
        connect(device, credentials)
    queued = [queue(device, f"sleep 1; echo {n}") for n, device in enumerate(devices)]
    started = time.monotonic()
    claimed = services.execute_waiting_commands()
    assert time.monotonic() - started < 4  # one after the other would take 5 s and more
    assert [command.pk for command in claimed] == [command.pk for command in queued]  # oldest first
    for n, command in enumerate(queued):
        command.refresh_from_db()
        assert (command.status, command.output, command.exit_code) == (CommandStatus.SUCCESS, f"{n}\n", 0)
        assert command.started and command.finished
    assert DeviceConnection.objects.filter(is_working=True).count() == 5
    assert services.execute_waiting_commands() == []  # nothing left: a later task returns at once


@override_settings(NETFLEET_CONNECTIONS_SSH_CONCURRENCY=2)
def test_a_batch_claims_at_most_the_concurrency_and_skips_commands_owned_by_a_retry(sshd, organization):
    credentials = ssh_credentials(organization, sshd)
    devices = [make_device(organization, management_ip="127.0.0.1") for _ in range(4)]
    for device in devices:
        connect(device, credentials)
    first, second, third, retrying = (queue(device, "true") for device in devices)
    Command.objects.filter(pk=retrying.pk).update(failure_reason="Retrying: Connection refused")
    assert [command.pk for command in services.execute_waiting_commands()] == [first.pk, second.pk]
    assert [command.pk for command in services.execute_waiting_commands()] == [third.pk]
    assert services.execute_waiting_commands() == []
    retrying.refresh_from_db()
    assert (retrying.status, retrying.started) == (CommandStatus.IN_PROGRESS, None)


def test_batch_hands_an_unreachable_device_to_a_retry(sshd, organization):
    reachable = make_device(organization, management_ip="127.0.0.1")
    connect(reachable, ssh_credentials(organization, sshd))
    unreachable = make_device(organization, management_ip="127.0.0.1")
    connect(unreachable, ssh_credentials(organization, sshd, name="down", port=free_port()))
    ok, waiting = queue(reachable, "echo up"), queue(unreachable, "echo up")
    services.execute_waiting_commands()
    ok.refresh_from_db(), waiting.refresh_from_db()
    assert (ok.status, ok.output) == (CommandStatus.SUCCESS, "up\n")
    assert (waiting.status, waiting.started) == (CommandStatus.IN_PROGRESS, None)
    assert waiting.failure_reason.startswith("Retrying: Connection refused")
    assert services.execute_waiting_commands() == []  # its retry task runs it, not the next batch
    connection = unreachable.connections.get()
    assert connection.is_working is False
    last = services.run_command(
        device=unreachable, type="custom", input={"command": "true"}, requested_by=None, connection=connection
    )
    with override_settings(NETFLEET_CONNECTIONS_COMMAND_RETRIES=0):
        services.execute_waiting_commands()
    last.refresh_from_db()
    assert last.status == CommandStatus.FAILED and last.failure_reason.startswith("Connection refused")


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
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        assert services.schedule_config_pushes() == []  # applied: nothing to push
        change_template(template, 1400)  # armed by the controller's hook, due after the debounce
        connection.refresh_from_db()
        assert connection.push_due == start + timedelta(seconds=5)
        assert connection.push_checksum == Config.objects.get(device=device).checksum
        clock.shift(3)
        assert services.schedule_config_pushes() == []
        change_template(template, 1300)  # another edit within the window re-arms it
        clock.shift(3)
        assert services.schedule_config_pushes() == []  # 6 s after the first edit, 3 s after the last
        clock.shift(2)
        assert services.schedule_config_pushes() == [connection.pk]  # 5 s after the last: one push
        assert services.schedule_config_pushes() == []  # pushed once
        clock.shift(20)
        assert services.schedule_config_pushes() == []
        DeviceConnection.objects.filter(pk=connection.pk).update(is_working=False)
        change_template(template, 1200)
        clock.shift(60)
        assert services.schedule_config_pushes() == []  # unreachable: skipped


def test_periodic_scan_is_the_backstop_for_connections_usable_later(linux_device):
    device, template, connection = linux_device
    DeviceConnection.objects.filter(pk=connection.pk).update(is_working=False)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        change_template(template, 1400)  # nothing to arm: the device's only connection failed
        connection.refresh_from_db()
        assert (connection.push_checksum, connection.push_due) == ("", None)
        DeviceConnection.objects.filter(pk=connection.pk).update(is_working=True)  # e.g. a re-test revived it
        assert services.schedule_config_pushes() == []  # the scan arms it
        clock.shift(5)
        assert services.schedule_config_pushes() == [connection.pk]


def test_scan_claims_a_due_push_once(linux_device):
    device, template, connection = linux_device
    with override_settings(NETFLEET_CONNECTIONS_PUSH_DEBOUNCE=0):
        change_template(template, 1400)
    # the scan queued by the change and the periodic one: whichever comes first pushes, the other finds nothing
    assert services.schedule_config_pushes(connection_ids=[connection.pk]) == [connection.pk]
    assert services.schedule_config_pushes() == []


def test_configs_modified_hook_is_one_query_without_connections(organization, django_assert_num_queries):
    assert hooks.arm_config_pushes in extensions.CONFIGS_MODIFIED
    config_ids = [make_device(organization).config.pk for _ in range(3)]
    with django_assert_num_queries(1):
        assert services.arm_config_pushes(config_ids=config_ids) == []


def test_template_change_over_the_api_arms_the_push(
    sshd, client_as, organization, linux_device, django_capture_on_commit_callbacks
):
    device, template, connection = linux_device
    other = connect(device, ssh_credentials(organization, sshd, name="other"))
    client = client_as(Role.NETWORK_ADMIN)[0]
    config = {"interfaces": [{"name": "lan0", "type": "ethernet", "mtu": 1400}]}
    before = timezone.now()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.patch(f"/api/v1/controller/template/{template.pk}/", {"config": config})
    assert response.status_code == 200, response.content
    assert Config.objects.get(device=device).status == ConfigStatus.MODIFIED
    connection.refresh_from_db(), other.refresh_from_db()
    # armed right away, without waiting for the periodic scan: due once the debounce period has passed
    assert connection.push_checksum == Config.objects.get(device=device).checksum
    assert before + timedelta(seconds=5) <= connection.push_due <= timezone.now() + timedelta(seconds=5)
    assert (other.push_checksum, other.push_due) == ("", None)  # one connection per device
    assert len(callbacks) == 1  # the scan of the armed connection, queued for when it is due
    assert services.schedule_config_pushes(connection_ids=[connection.pk]) == []  # not due yet
    due = services.schedule_config_pushes(connection_ids=[connection.pk], now=connection.push_due)
    assert due == [connection.pk]


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


# --- re-test of failed connections ---------------------------------------------------------------------------


def retest_due():
    """A moment past the re-test interval."""
    return timezone.now() + timedelta(seconds=settings.NETFLEET_CONNECTIONS_RETEST_INTERVAL + 1)


def test_retest_revives_a_fixed_connection_and_keeps_a_broken_one_failed(
    sshd, organization, django_capture_on_commit_callbacks
):
    fixed_device = make_device(organization, management_ip="127.0.0.1")
    broken_device = make_device(organization, management_ip="127.0.0.1")
    fixed_credentials = ssh_credentials(organization, sshd, name="typo", port=free_port())
    fixed = connect(fixed_device, fixed_credentials)
    broken = connect(broken_device, ssh_credentials(organization, sshd, name="gone", port=free_port()))
    for device in (fixed_device, broken_device):
        assert run(device, "true").status == CommandStatus.FAILED  # refused: the connection is marked failed
    with pytest.raises(services.NoUsableConnection):
        run(fixed_device, "true")
    services.update_credentials(credentials=fixed_credentials, params={"username": sshd.user, "port": sshd.port})

    assert services.retest_connections() == []  # attempted within the interval: not yet
    now = retest_due()
    with django_capture_on_commit_callbacks() as callbacks:
        queued = services.retest_connections(now=now)
    assert sorted(queued) == sorted([fixed.pk, broken.pk]) and len(callbacks) == 1  # one chunk
    assert services.retest_connections(now=now) == []  # claimed: queued once
    checked = timezone.now()
    services.check_connections(connection_ids=queued)

    fixed.refresh_from_db(), broken.refresh_from_db()
    assert (fixed.is_working, fixed.failure_reason) == (True, "")
    assert fixed.host_key.split()[:2] == sshd.host_key.with_suffix(".pub").read_text().split()[:2]
    assert fixed.last_attempt >= checked and broken.last_attempt >= checked
    assert broken.is_working is False and broken.failure_reason.startswith("Connection refused by 127.0.0.1:")
    assert run(fixed_device, "echo back").output == "back\n"  # usable again


def test_retest_reports_wrong_credentials(sshd, organization):
    device = make_device(organization, management_ip="127.0.0.1")
    connection = connect(device, ssh_credentials(organization, sshd, password="not-the-password"))
    services.check_connections(connection_ids=services.retest_connections(now=retest_due()))
    connection.refresh_from_db()
    assert connection.is_working is False and connection.last_attempt
    assert connection.failure_reason == f"Authentication failed on 127.0.0.1:{sshd.port} for user {sshd.user!r} " + (
        "(wrong password or key)"
    )


def test_retest_picks_failed_and_untried_connections_of_reachable_devices(sshd, organization):
    credentials = ssh_credentials(organization, sshd)
    now = timezone.now()
    recent = now - timedelta(seconds=settings.NETFLEET_CONNECTIONS_RETEST_INTERVAL - 10)
    old = now - timedelta(seconds=settings.NETFLEET_CONNECTIONS_RETEST_INTERVAL + 10)

    def connection(*, device=None, **fields):
        return connect(device or make_device(organization, management_ip="127.0.0.1"), credentials, **fields)

    failed_long_ago = connection(is_working=False, last_attempt=old)
    never_tried = connection()
    through_last_ip = connection(device=make_device(organization, last_ip="127.0.0.1"), is_working=False)
    connection(is_working=False, last_attempt=recent)
    connection(is_working=True, last_attempt=old)
    connection(is_working=False, last_attempt=old, enabled=False)
    connection(device=make_device(organization), is_working=False, last_attempt=old)  # no address to test
    deactivated = connection(is_working=False, last_attempt=old)
    controller_services.deactivate_device(device=deactivated.device)

    queued = services.retest_connections(now=now)
    assert sorted(queued) == sorted([failed_long_ago.pk, never_tried.pk, through_last_ip.pk])
    assert set(DeviceConnection.objects.filter(last_attempt=now).values_list("pk", flat=True)) == set(queued)


@override_settings(NETFLEET_CONNECTIONS_PUSH_CHUNK=2)
def test_retest_queues_chunks(sshd, organization, django_capture_on_commit_callbacks):
    credentials = ssh_credentials(organization, sshd)
    connections = [
        connect(make_device(organization, management_ip="127.0.0.1"), credentials, is_working=False) for _ in range(5)
    ]
    with django_capture_on_commit_callbacks() as callbacks:
        queued = services.retest_connections()
    assert len(queued) == 5 and len(callbacks) == 3  # chunks of 2, 2 and 1
    for start in range(0, 5, 2):
        services.check_connections(connection_ids=queued[start : start + 2])
    assert all(DeviceConnection.objects.get(pk=c.pk).is_working for c in connections)
