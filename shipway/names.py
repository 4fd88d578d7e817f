"""Validation of names that come from users and end up in paths or refs."""

from __future__ import annotations

import re

from shipway.errors import InvalidName

APP_NAME = re.compile(r"[a-z][a-z0-9-]{1,29}")
CONFIG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_CONFIG_KEYS = frozenset({"PORT", "DYNO"})
EMAIL = re.compile(r"[^@\s/\\:]+@[^@\s/\\:]+")


def check_app_name(name: str) -> str:
    if not isinstance(name, str) or not APP_NAME.fullmatch(name):
        raise InvalidName(
            f"Name {name!r} is invalid: must start with a letter, contain only lowercase "
            "letters, numbers and dashes, and be 2 to 30 characters long."
        )
    return name


def check_config_key(key: str) -> str:
    if not CONFIG_KEY.fullmatch(key):
        raise InvalidName(
            f"Invalid config var name {key!r}: use letters, digits and underscores, "
            "not starting with a digit."
        )
    if key in RESERVED_CONFIG_KEYS:
        raise InvalidName(f"Config var {key} is reserved and set by Shipway.")
    return key


def check_email(email: str) -> str:
    if not EMAIL.fullmatch(email):
        raise InvalidName(f"Invalid email address {email!r}.")
    return email.lower()


def shown_name(name: str) -> str:
    """A file name as text anyone can print: bytes that are not UTF-8 as ``\\xff``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
