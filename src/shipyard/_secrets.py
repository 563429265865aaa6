"""Secrets stay out of the configuration a run stores.

A setting names a secret as `${NAME}` (`remote = "https://bot:${SITE_TOKEN}@git.example.org/
site.git"`). Its value is read only where the setting is used, by `expand_secrets`: from the
environment, else from the credentials file (`$SHIPYARD_CREDENTIALS_FILE`, default
`~/.config/shipyard/credentials.toml`: `NAME = "value"` lines, readable by its owner alone).
The configuration a run stores keeps the `${NAME}` text, so a shared database holds no
credential; each worker host brings its own. A value read is redacted from then on.

A credential written into the configuration itself (a URL's password or token, a secret
query parameter) is refused when the file is read: `literal_credential` finds it.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from shipyard._errors import ConfigError
from shipyard._redact import PLACEHOLDER, SECRET_QUERY, URL_USERINFO, remember

__all__ = [
    "CREDENTIALS_FILE_ENV",
    "credentials_file",
    "expand_secrets",
    "literal_credential",
    "secret_names",
]

CREDENTIALS_FILE_ENV = "SHIPYARD_CREDENTIALS_FILE"


def credentials_file() -> Path:
    """Where secrets not in the environment are read from."""
    default = Path("~/.config/shipyard/credentials.toml")
    return Path(os.environ.get(CREDENTIALS_FILE_ENV) or default).expanduser()


def secret_names(text: str) -> list[str]:
    """The `${NAME}`s that `text` refers to."""
    return PLACEHOLDER.findall(text)


def expand_secrets(text: str, *, key: str = "") -> str:
    """`text` (the value of setting `key`) with each `${NAME}` replaced by its secret.

    Use the result where it is needed and never store it. A secret set nowhere is a
    `ConfigError` naming it, the setting, and where to set it."""
    if "${" not in text:
        return text
    stored: dict[str, object] | None = None

    def value(match: re.Match[str]) -> str:
        nonlocal stored
        name = match.group(1)
        found = os.environ.get(name)
        if found is None:
            stored = _read_credentials(key) if stored is None else stored
            secret = stored.get(name)
            found = secret if isinstance(secret, str) else None
        if found is None:
            raise ConfigError(
                f"names the secret ${{{name}}}, which is set neither in the environment nor "
                f"in {credentials_file()}",
                key=key or None,
                hint=f'export {name}=..., or add {name} = "..." to that file '
                f"({CREDENTIALS_FILE_ENV} names another)",
            )
        remember(found)
        return found

    return PLACEHOLDER.sub(value, text)


def _read_credentials(key: str) -> dict[str, object]:
    file = credentials_file()
    try:
        mode = file.stat().st_mode
    except OSError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the credentials file {file} can be read by other users",
            key=key or None,
            hint=f"run `chmod 600 {file}`",
        )
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        # the parser's message says where the file is wrong, never what a value is
        raise ConfigError(
            f"the credentials file {file} is not valid TOML: {exc}", key=key or None
        ) from None


def literal_credential(value: str) -> str:
    """What in `value` is a credential written out (not a `${NAME}`), in words; "" if none.

    A password in any URL is one; so is a user name in an http(s) URL (tokens travel that
    way, `https://TOKEN@host`), and the value of a query parameter named like a key, token,
    secret, password or signature. An ssh user (`ssh://git@host`) is not a secret.
    """
    for match in URL_USERINFO.finditer(value):
        user, colon, password = match.group("userinfo").partition(":")
        scheme = match.group("scheme").lower()
        if colon and not PLACEHOLDER.fullmatch(password):
            return "a password in a URL"
        if not colon and scheme.startswith("http") and not PLACEHOLDER.fullmatch(user):
            return "a user name or token in a URL"
    if "://" in value:
        for name, given in parse_qsl(urlsplit(value.strip()).query, keep_blank_values=True):
            secret_name = SECRET_QUERY.fullmatch(f"?{name}=x")
            if secret_name and given and not PLACEHOLDER.fullmatch(given):
                return f"the secret query parameter {name!r} in a URL"
    return ""
