"""Passengers' phone numbers in one form, E.164 (`+79161234567`), whoever wrote them.

The telephony, processing and the order form write a number in different ways
(`8 (916) 123-45-67`, `79161234567`, `+7 916 123 45 67`); a rule written under one form
must be found under another, so every number is normalised before it becomes a key.
"""

from __future__ import annotations

import phonenumbers

__all__ = ["MAX_INPUT_CHARS", "InvalidPhone", "normalise"]

MAX_INPUT_CHARS = 64  # phonenumbers refuses longer input itself; this keeps error messages short


class InvalidPhone(ValueError):
    """Not a phone number anyone can call; the message says why."""


def normalise(raw: str, region: str = "RU") -> str:
    """`raw` in E.164. Numbers without a country code are read as numbers of `region`."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhone("is empty")
    if len(raw) > MAX_INPUT_CHARS:
        raise InvalidPhone(f"is longer than {MAX_INPUT_CHARS} characters")
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{raw!r} is not a phone number ({exc._msg.rstrip('.').lower()})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
