"""Errors that carry the one line a user sees.

Tree::

    ShipwayError                 message (one line) + optional hint
    ├── UsageError               bad command-line input (exit code 2)
    ├── SettingsError            bad value in shipway.toml (names the key)
    ├── InvalidName              app name, config key, ref name that breaks a rule
    ├── NotFound                 unknown app, release, slug
    ├── AccessDenied             authenticated but not allowed
    ├── Unauthorized             missing or wrong credentials
    ├── TooManyRequests          too many wrong credentials: wait ``retry_after`` seconds
    ├── Conflict                 the resource already exists / state forbids it
    ├── PushRejected             a push stage declined the update (pre-receive)
    │   ├── BuildFailed          (builder) the build did not produce a slug
    │   └── DiskFull             no space left on the data home's disk (HTTP 507)
    └── LaunchFailed             (release) the new release did not start

Each error is rendered once, at the edge: ``remote:  !     <message>`` for a push, stderr and
an exit code for the CLI, a JSON body for the API.
"""

from __future__ import annotations


class ShipwayError(Exception):
    """Base error: ``message`` is the one line shown to the user."""

    api_id = "error"
    http_status = 400

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(ShipwayError):
    api_id = "invalid_params"
    http_status = 422


class SettingsError(ShipwayError):
    api_id = "invalid_settings"
    http_status = 500


class InvalidName(ShipwayError):
    api_id = "invalid_params"
    http_status = 422


class NotFound(ShipwayError):
    api_id = "not_found"
    http_status = 404


class AccessDenied(ShipwayError):
    api_id = "forbidden"
    http_status = 403


class Unauthorized(ShipwayError):
    api_id = "unauthorized"
    http_status = 401


class TooManyRequests(ShipwayError):
    api_id = "rate_limit"
    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(ShipwayError):
    api_id = "conflict"
    http_status = 409


class PushRejected(ShipwayError):
    """A pre-receive stage declined the push; ``reason`` is the short ``ng`` text."""

    def __init__(self, message: str, reason: str = "pre-receive hook declined",
                 hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.reason = reason


class BuildFailed(PushRejected):
    pass


class LaunchFailed(ShipwayError):
    api_id = "launch_failed"
    http_status = 500


class DiskFull(PushRejected):
    """No space left on the data home's filesystem; nothing half-written was kept."""

    api_id = "disk_full"
    http_status = 507

    def __init__(self, what: str, *, push: bool = False) -> None:
        line = f"no space left on the server's disk while {what}"
        super().__init__(f"Push rejected: {line}." if push else line[0].upper() + line[1:] + ".",
                         reason="no space left on device",
                         hint="Free space in the data home, then try again.")
        self.what = what
