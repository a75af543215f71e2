"""Upgraders: how a device is flashed. The upgrader is chosen by the update strategy of the device's connection
(`register_upgrader`); OpenWrt over SSH is built in, others (RouterOS, generic Linux) plug in the same way.

An upgrade is a long sequence of steps with database writes between them (log lines, progress, the cancel
check), so an upgrader is sync code run in a worker thread; its SSH session lives on an event loop owned by
that thread (`DeviceSession`), so asyncssh and the ORM never meet.
"""

import asyncio
import contextlib
import dataclasses
import hashlib
import re
import shlex
import time

import asyncssh
from django.conf import settings

from netfleet.connections.choices import UpdateStrategy
from netfleet.connections.connectors import ConnectionFailed, DeviceUnreachable

from .choices import UpgradeStep
from .models import UPGRADE_OPTION_DEFAULTS

UPLOAD_CHUNK = 256 * 1024


class UpgradeStopped(Exception):
    """Base of an upgrade's outcomes other than success; `reason` is what the operator reads in the log."""

    def __init__(self, reason):
        self.reason = reason
        super().__init__(reason)


class UpgradeAborted(UpgradeStopped):
    """A precondition stopped the upgrade before flashing: the device still runs its firmware, untouched."""


class UpgradeFailed(UpgradeStopped):
    """The upgrade did not reach its end (a corrupt upload, a refused flash, a device that never came back)."""


class UpgradeCancelled(UpgradeStopped):
    """The operator cancelled it before flashing."""


class DeviceSession:
    """A sync face of a connector session, on an event loop owned by the calling thread."""

    def __init__(self, connector, target):
        self.target = target
        self.loop = asyncio.new_event_loop()
        self._context = connector.session(target)
        try:
            self.session = self.loop.run_until_complete(self._context.__aenter__())
        except BaseException:
            self._close_loop()
            raise

    @property
    def host_key(self):
        return self.session.host_key

    def run(self, command, *, timeout=None):
        return self.loop.run_until_complete(self.session.run(command, timeout=timeout))

    def upload(self, handle, path, *, on_progress=None):
        """Stream an open file to `path` on the device over SFTP, chunk by chunk (`on_progress(bytes_sent)`
        between chunks, in sync code). Returns the sha256 of what was sent."""
        digest, sent = hashlib.sha256(), 0
        run = self.loop.run_until_complete
        try:
            sftp = run(self.session.connection.start_sftp_client())
            try:
                remote = run(sftp.open(path, "wb"))
                try:
                    while chunk := handle.read(UPLOAD_CHUNK):
                        run(remote.write(chunk))
                        digest.update(chunk)
                        sent += len(chunk)
                        if on_progress is not None:
                            on_progress(sent)
                finally:
                    run(remote.close())
            finally:
                sftp.exit()
        except (asyncssh.Error, OSError) as exc:
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            raise ConnectionFailed(f"Upload of {path} failed: {reason}") from None
        return digest.hexdigest()

    def close(self):
        with contextlib.suppress(Exception):  # closing a dropped connection may fail in any way; it is gone
            self.loop.run_until_complete(self._context.__aexit__(None, None, None))
            self.loop.run_until_complete(asyncio.sleep(0))
        self._close_loop()

    def _close_loop(self):
        pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()


_UPGRADERS = {}


def register_upgrader(update_strategy, upgrader_class):
    """Use `upgrader_class` for devices whose connection has this update strategy (a later registration wins)."""
    _UPGRADERS[update_strategy] = upgrader_class
    return upgrader_class


def get_upgrader(update_strategy):
    return _UPGRADERS.get(update_strategy)


class Upgrader:
    """Base of upgraders. `upgrade()` runs every step, reporting through the recorder, and returns normally on
    success; it raises UpgradeAborted, UpgradeFailed or UpgradeCancelled otherwise (ConnectionFailed from a
    session is a failure of the current step). After success `host_key` is the key the device presented."""

    def __init__(self, *, operation, recorder, connector, target):
        self.operation = operation
        self.recorder = recorder
        self.connector = connector
        self.target = target
        self.options = {**UPGRADE_OPTION_DEFAULTS, **(operation.upgrade_options or {})}
        self.host_key = ""

    def upgrade(self):
        raise NotImplementedError


def version_matches(build, reported):
    """Whether the version a device reports is `build`: its OS identifier when the build has one, else its
    version number as a whole word."""
    reported = (reported or "").strip()
    if not reported:
        return False
    if build.os:
        return reported == build.os.strip()
    return re.search(rf"(?<![\w.]){re.escape(build.version)}(?![\w.])", reported) is not None


def _format_size(size):
    return f"{size / (1024 * 1024):.1f} MiB"


class OpenWrtUpgrader(Upgrader):
    """OpenWrt over SSH: check free space, stream the image with its sha256 verified on the device, test it
    with `sysupgrade --test`, flash it with sysupgrade (keeping the configuration unless asked), wait for the
    device to go away and come back, and confirm it reports the new build.

    Commands and timings come from NETFLEET_FIRMWARE_* settings (read at call time)."""

    def upgrade(self):
        recorder, image = self.recorder, self.operation.image
        build = image.build
        remote_path = f"{settings.NETFLEET_FIRMWARE_OPENWRT_UPLOAD_DIR.rstrip('/')}/netfleet-firmware-"
        remote_path += f"{self.operation.pk.hex}.bin"
        quoted = shlex.quote(remote_path)
        command = settings.NETFLEET_FIRMWARE_OPENWRT_UPGRADE_COMMAND

        recorder.log(f"Connecting to {self.target.host}:{self.target.port}", step=UpgradeStep.CONNECTING, progress=5)
        session = DeviceSession(self.connector, self.target)
        flashing = False
        try:
            recorder.log("Connected", step=UpgradeStep.CHECKING, progress=10)
            before = self.reported_version(session)
            recorder.log(f"The device reports firmware {before!r}" if before else "The device reports no version")
            if version_matches(build, before) and not self.options["force"]:
                raise UpgradeAborted(f"The device already runs {build.os or build.version} (use force to reflash)")
            self.check_free_space(session, image.size)
            recorder.check_cancelled()

            recorder.log(
                f"Uploading {image.filename} ({_format_size(image.size)}) to {remote_path}",
                step=UpgradeStep.UPLOADING,
                progress=10,
            )
            sent_sha256 = self.upload(session, image, remote_path)
            recorder.check_cancelled()

            recorder.log("Verifying the checksum on the device", step=UpgradeStep.VERIFYING, progress=62)
            self.verify_checksum(session, image, quoted, sent_sha256)
            if settings.NETFLEET_FIRMWARE_OPENWRT_TEST_IMAGE:
                result = session.run(f"{command} --test {quoted}")
                if result.exit_code != 0:
                    session.run(f"rm -f {quoted}")
                    raise UpgradeAborted(f"The device refused the image: {result.output.strip()[-500:] or 'no output'}")
                recorder.log("The device accepted the image (sysupgrade --test)", progress=68)

            recorder.claim_flashing()  # raises UpgradeCancelled if the operator was first
            flashing = True
            flags = ["-v"] + ([] if self.options["keep_config"] else ["-n"]) + (["-F"] if self.options["force"] else [])
            keep = "keeping" if self.options["keep_config"] else "discarding"
            recorder.log(f"Flashing: {command} {' '.join(flags)} ({keep} the configuration)", progress=75)
            self.flash(session, f"{command} {' '.join(flags)} {quoted}", quoted)
        except (UpgradeAborted, UpgradeFailed, UpgradeCancelled, ConnectionFailed):
            if not flashing:
                with contextlib.suppress(ConnectionFailed):
                    session.run(f"rm -f {quoted}", timeout=10)
            raise
        finally:
            session.close()

        flashed_at = time.monotonic()
        recorder.log("Waiting for the device to reboot", step=UpgradeStep.REBOOTING, progress=85)
        session = self.wait_for_reboot(flashed_at)
        try:
            recorder.log("The device is back; confirming its firmware", step=UpgradeStep.CONFIRMING, progress=95)
            after = self.reported_version(session)
            if not version_matches(build, after):
                expected = build.os or build.version
                raise UpgradeFailed(f"After the reboot the device reports {after or 'no version'!r}, not {expected!r}")
            self.host_key = session.host_key
            recorder.log(f"The device runs {after}")
        finally:
            session.close()

    def reported_version(self, session):
        result = session.run(settings.NETFLEET_FIRMWARE_OPENWRT_VERSION_COMMAND, timeout=30)
        return result.output.strip().splitlines()[-1].strip() if result.exit_code == 0 and result.output.strip() else ""

    def check_free_space(self, session, size):
        directory = settings.NETFLEET_FIRMWARE_OPENWRT_UPLOAD_DIR
        result = session.run(f"df -Pk {shlex.quote(directory)}", timeout=30)
        lines = result.output.strip().splitlines()
        try:
            available = int(lines[-1].split()[3]) * 1024
        except (IndexError, ValueError):
            raise UpgradeAborted(
                f"Could not read the free space of {directory}: {result.output.strip()[-200:]}"
            ) from None
        needed = size + settings.NETFLEET_FIRMWARE_OPENWRT_MIN_FREE_SPACE
        if available < needed:
            raise UpgradeAborted(
                f"Not enough free space in {directory}: {_format_size(available)} available, "
                f"{_format_size(needed)} needed"
            )
        self.recorder.log(f"Free space in {directory}: {_format_size(available)}")

    def upload(self, session, image, remote_path):
        size = max(image.size, 1)
        reported = [0]

        def progress(sent):
            percent = 10 + int(50 * sent / size)
            if percent >= reported[0] + 5 or sent >= image.size:  # a write per 10% of the image, not per chunk
                reported[0] = percent
                self.recorder.log(f"Uploaded {_format_size(sent)} of {_format_size(image.size)}", progress=percent)

        try:
            with image.file.open("rb") as handle:
                return session.upload(handle, remote_path, on_progress=progress)
        except FileNotFoundError:
            raise UpgradeAborted("The image file is missing from storage") from None

    def verify_checksum(self, session, image, quoted, sent_sha256):
        result = session.run(f"sha256sum {quoted}", timeout=120)
        found = result.output.split()[0] if result.exit_code == 0 and result.output.split() else ""
        if found != image.sha256:
            session.run(f"rm -f {quoted}")
            if sent_sha256 != image.sha256:
                detail = "the stored image file is corrupt"
            else:
                detail = "the upload was corrupted on the way"
            raise UpgradeFailed(
                f"Checksum mismatch ({detail}): the device computed sha256 {found or '?'}, "
                f"the image's recorded sha256 is {image.sha256}"
            )
        self.recorder.log(f"Checksum verified on the device: sha256 {found}", progress=65)

    def flash(self, session, command, quoted_path):
        try:
            result = session.run(command, timeout=settings.NETFLEET_FIRMWARE_OPENWRT_UPGRADE_TIMEOUT)
        except ConnectionFailed:
            self.recorder.log("The connection dropped: the device is flashing")
            return
        output = result.output.strip()
        if output:
            self.recorder.log(output[-2000:])
        if result.timed_out:
            self.recorder.log(f"sysupgrade still runs after {settings.NETFLEET_FIRMWARE_OPENWRT_UPGRADE_TIMEOUT} s")
        elif result.exit_code is None:
            self.recorder.log("The connection dropped: the device is flashing")
        elif result.exit_code != 0:
            with contextlib.suppress(ConnectionFailed):  # the image would hold the device's RAM until a reboot
                session.run(f"rm -f {quoted_path}", timeout=10)
            raise UpgradeFailed(f"sysupgrade exited with code {result.exit_code}; the device keeps its firmware")

    def wait_for_reboot(self, flashed_at):
        """A session to the device once it is back: after it went away, or (when it was never seen going
        away) once NETFLEET_FIRMWARE_REBOOT_DELAY has passed. UpgradeFailed after the reboot timeout."""
        timeout = settings.NETFLEET_FIRMWARE_REBOOT_TIMEOUT
        poll = settings.NETFLEET_FIRMWARE_REBOOT_POLL
        target = self.target
        if not self.options["keep_config"]:
            # a device flashed without its configuration comes back with new host keys: trust them on first use
            target = dataclasses.replace(target, host_key="")
        went_away, last_reason = False, "never answered"
        while True:
            time.sleep(poll)
            remaining = timeout - (time.monotonic() - flashed_at)
            if remaining <= 0:
                raise UpgradeFailed(f"The device did not come back within {timeout:g} s ({last_reason})")
            attempt = dataclasses.replace(target, connect_timeout=max(1, min(target.connect_timeout, remaining)))
            try:
                session = DeviceSession(self.connector, attempt)
            except DeviceUnreachable as exc:
                if not went_away:
                    self.recorder.log("The device went away")
                went_away, last_reason = True, exc.reason
                continue
            except ConnectionFailed as exc:  # it answers, but refuses us (authentication, host key)
                last_reason = exc.reason
                if time.monotonic() - flashed_at + poll >= timeout:
                    raise UpgradeFailed(f"The device came back but cannot be logged in to: {exc.reason}") from None
                continue
            if went_away or time.monotonic() - flashed_at >= settings.NETFLEET_FIRMWARE_REBOOT_DELAY:
                return session
            session.close()  # still up: it has not started rebooting yet


register_upgrader(UpdateStrategy.OPENWRT_SSH, OpenWrtUpgrader)
