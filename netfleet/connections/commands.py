"""The command types a device can run, and the registry other apps add theirs to.

A type declares an input serializer (validated on create: bad input is a 422 naming `input.<field>`), the
input fields that are secret (stored encrypted, never shown), and how to turn the input into a shell command
(and what to feed it on stdin, so secrets never appear in the device's process list).
"""

from collections.abc import Callable
from dataclasses import dataclass

from rest_framework import serializers


@dataclass(frozen=True)
class CommandType:
    name: str
    label: str
    input_serializer: type[serializers.Serializer]
    build: Callable[[dict], tuple[str, str | None]]  # full input (secrets included) -> (shell command, stdin)
    secret_fields: tuple[str, ...] = ()


_REGISTRY: dict[str, CommandType] = {}


def register_command_type(command_type):
    """Add a command type (apps call this in `AppConfig.ready()`); a second registration of a name wins."""
    _REGISTRY[command_type.name] = command_type
    return command_type


def get_command_type(name):
    return _REGISTRY.get(name)


def command_types():
    return dict(_REGISTRY)


class CustomInput(serializers.Serializer):
    command = serializers.CharField(max_length=8192, help_text="A shell command")


class NoInput(serializers.Serializer):
    pass


class ChangePasswordInput(serializers.Serializer):
    password = serializers.CharField(min_length=6, max_length=128, write_only=True, trim_whitespace=False)
    confirm_password = serializers.CharField(min_length=6, max_length=128, write_only=True, trim_whitespace=False)

    def validate(self, attrs):
        if attrs["password"] != attrs["confirm_password"]:
            raise serializers.ValidationError({"confirm_password": "The two passwords do not match."})
        if "\n" in attrs["password"]:
            raise serializers.ValidationError({"password": "Must not contain a line break."})
        return attrs


def _custom(data):
    return data["command"], None


def _reboot(data):
    # detached so the command itself returns before the connection drops
    return "(sleep 2; reboot) >/dev/null 2>&1 </dev/null &", None


def _change_password(data):
    password = data["password"]
    return "passwd", f"{password}\n{password}\n"


register_command_type(CommandType("custom", "Custom commands", CustomInput, _custom))
register_command_type(CommandType("reboot", "Reboot", NoInput, _reboot))
register_command_type(
    CommandType(
        "change_password",
        "Change password",
        ChangePasswordInput,
        _change_password,
        secret_fields=("password", "confirm_password"),
    )
)

__all__ = ["CommandType", "register_command_type", "get_command_type", "command_types"]
