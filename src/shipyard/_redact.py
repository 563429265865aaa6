"""What is printed, logged, stored or raised carries no credential.

`redact(text)` replaces with `***` the credentials in URLs (`https://***@host`,
`?token=***`), the values of secret-named environment variables (`*_KEY`, `*_TOKEN`,
`*_SECRET`, `*_PASSWORD`) and every secret this process has read for a `${NAME}` setting
(`remember`). Every `ShipyardError`, ledger row and log line passes through it.
"""

from __future__ import annotations

import logging
import os
import re

__all__ = [
    "PLACEHOLDER",
    "SECRET_QUERY",
    "URL_USERINFO",
    "redact",
    "redact_log_record",
    "remember",
]

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # a secret by name: `${NAME}`
URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s\"'<>]+)@")
SECRET_QUERY = re.compile(
    r"(?P<key>[?&][\w.-]*(?:token|key|secret|password|passwd|sig|signature|auth)[\w.-]*)="
    r"(?P<value>[^&#\s'\"]+)",
    re.IGNORECASE,
)
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)
_SHORTEST = 8  # a shorter value, or a plain word, would redact ordinary text
_remembered: set[str] = set()


def remember(secret: str) -> None:
    """Redact `secret` from now on, wherever it appears."""
    if _looks_secret(secret):
        _remembered.add(secret)


def _looks_secret(value: str) -> bool:
    return len(value) >= _SHORTEST and not value.isalpha()


def redact(text: str) -> str:
    """`text` with every credential this process knows of replaced by `***`."""
    if not text:
        return text
    text = URL_USERINFO.sub(_userinfo, text)
    text = SECRET_QUERY.sub(_query_value, text)
    secrets = _remembered | {
        value
        for name, value in os.environ.items()
        if _SECRET_NAME.search(name) and _looks_secret(value)
    }
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _userinfo(match: re.Match[str]) -> str:
    user, _, password = match.group("userinfo").partition(":")
    if PLACEHOLDER.fullmatch(password or user):  # names a secret, holds none
        return match.group()
    return f"{match.group('scheme')}***@"


def _query_value(match: re.Match[str]) -> str:
    if PLACEHOLDER.fullmatch(match.group("value")):
        return match.group()
    return f"{match.group('key')}=***"


def redact_log_record(record: logging.LogRecord) -> bool:
    """A logging filter: the record's message and traceback, redacted."""
    record.msg, record.args = redact(record.getMessage()), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    return True
