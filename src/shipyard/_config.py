"""Project configuration: one TOML file (`shipyard.toml`), validated once at start-up.

A missing or wrong setting is a ConfigError naming the key and the file. Every setting has a
working default, so a project needs only the file `shipyard init` writes. Paths in the file
are relative to the file's folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import ipaddress
import json
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shipyard._artifacts import ArtifactStore, ObjectStore, confined
from shipyard._errors import ConfigError
from shipyard._plugins import (
    SettingsTable,
    claimed_tables,
    import_workflows,
    installed_plugins,
)
from shipyard._secrets import expand_secrets, literal_credential, secret_names

__all__ = [
    "CONFIG_FILE",
    "Config",
    "ConsoleConfig",
    "EngineConfig",
    "LogsConfig",
    "OwnerConfig",
    "ProviderConfig",
    "ProviderName",
    "PublishConfig",
    "ReviewConfig",
    "SmtpConfig",
    "TelemetryConfig",
    "VerifyConfig",
    "load_config",
]

CONFIG_FILE = "shipyard.toml"
PROFILES = "profiles"  # a workflow's named overrides of its own table, chosen per run
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_key)$", re.I)
log = logging.getLogger("shipyard.config")

S = TypeVar("S", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineConfig(_Section):
    database_url: str = ""  # empty: SQLite file in the state folder
    executor_id: str = "local"  # stable per worker process; env SHIPYARD_EXECUTOR_ID wins
    application_version: str = ""  # empty: the compatibility version (_engine)
    adopt_seconds: float = Field(default=10.0, gt=0)  # workers look for dead workers' runs


class ReviewConfig(_Section):
    """`[review]`: who decides at a review gate, by when, and the auto-approve policy."""

    reviewers: list[str] = ["editor"]
    deadline_hours: float = Field(default=72.0, gt=0)
    escalate_to: str = ""
    auto_approve: bool = False
    max_rounds: int = Field(default=5, ge=1)  # rounds of changes (edits, revisions) at most
    max_revisions: int = Field(default=100, ge=1)  # saves (in the console) at most
    max_edit_bytes: int = Field(default=1_000_000, ge=1)  # an edited payload, as JSON
    resolve_comments: bool = False  # approval waits until every comment is resolved


def _s3_url(url: str) -> str:
    """An `s3://BUCKET[/PREFIX]` URL, with boto3 installed to reach it."""
    if not url:
        return url
    if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/-]*)?", url):
        raise ValueError(f"{url!r} is not s3://BUCKET or s3://BUCKET/PREFIX")
    if importlib.util.find_spec("boto3") is None:
        raise ValueError(
            "an object store needs boto3: pip install -e '.[s3]' in shipyard's checkout"
        )
    return url


def _endpoint_url(url: str) -> str:
    if url and not re.fullmatch(r"https?://[^\s/@]+(/\S*)?", url):
        raise ValueError(f"{url!r} is not an http(s) URL (without credentials)")
    return url


class PublishConfig(_Section):
    """`[publish]`: the target (a git remote and branch, or an S3-compatible bucket) and where
    production serves it."""

    remote: str = ""  # the site repository's git URL or path, or s3://BUCKET[/PREFIX]
    branch: str = "main"  # a git remote's branch
    endpoint_url: str = ""  # an s3:// remote's API where it is not AWS (R2, B2, MinIO)
    region: str = ""  # an s3:// remote's region

    @field_validator("remote")
    @classmethod
    def _a_bucket_or_git(cls, remote: str) -> str:
        return _s3_url(remote) if remote.startswith("s3://") else remote

    _an_endpoint = field_validator("endpoint_url")(_endpoint_url)

    @field_validator("branch")
    @classmethod
    def _a_branch_name(cls, branch: str) -> str:
        if (
            not re.fullmatch(r"[A-Za-z0-9._/-]+", branch)
            or branch.startswith("-")
            or (".." in branch or branch.endswith((".", "/", ".lock")))
        ):
            raise ValueError(f"{branch!r} is not a git branch name")
        return branch

    base_url: str = ""  # where production serves the site, e.g. https://example.org/podcast/
    max_file_bytes: int = Field(default=100_000_000, ge=1)
    author_name: str = "shipyard"
    author_email: str = "shipyard@localhost"


class VerifyConfig(_Section):
    """`[verify]`: how long and how often production is asked, and whom to tell."""

    deadline_seconds: float = Field(default=120.0, gt=0)
    first_delay_seconds: float = Field(default=0.5, ge=0)
    max_delay_seconds: float = Field(default=10.0, gt=0)
    webhook: str = ""  # notified when a run ends unverified
    # A CDN's purge, used when production serves a cached copy that is not what was shipped:
    # a URL POSTed {"urls": [...]} (`${NAME}` secrets allowed), or a command given the URLs.
    purge_url: str = ""
    purge_command: list[str] = []
    max_purges: int = Field(default=3, ge=1)  # purges at most, in one verification


class ConsoleConfig(_Section):
    """`[console]`: the review console (`shipyard console`): where it listens, how long a
    session lasts, and which proxies and origins it believes."""

    host: str = "127.0.0.1"  # loopback: reach it from elsewhere through a reverse proxy
    port: int = Field(default=8765, ge=0, le=65535)
    session_hours: float = Field(default=12.0, gt=0)
    # Origins besides the console's own that may send its forms (the public address a
    # reverse proxy serves it at, e.g. "https://review.example.org"). CSRF is never off.
    trusted_origins: list[str] = []
    # Reverse proxies whose X-Forwarded-For/-Proto headers, and `sso_header`, are believed.
    proxy_addresses: list[str] = []
    sso_header: str = ""  # e.g. "X-Forwarded-User": a user signed in by the proxy
    url: str = ""  # where people reach it, for links in notices (default: host and port)
    # Previews a reviewer may ask for in an hour, and the characters they may have spoken,
    # per person and per run: a preview may call a paid voice with the operator's key.
    previews_per_hour: int = Field(default=120, ge=1)
    preview_chars_per_hour: int = Field(default=30_000, ge=1)

    @field_validator("trusted_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", origin):
                raise ValueError(f"{origin!r} is not an origin like https://review.example.org")
        return origins


class OwnerConfig(_Section):
    """`[owners.NAME]`: how to reach an owner named on steps, gates and workflows. Either
    channel may name `${SECRET}`s."""

    webhook: str = ""  # a JSON POST per notice
    email: list[str] = []  # addresses, sent through [smtp]


class SmtpConfig(_Section):
    """`[smtp]`: the mail server owners' e-mail goes through."""

    host: str = ""
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = "shipyard@localhost"
    username: str = ""
    password: str = ""  # a `${NAME}` secret, never the password itself
    starttls: bool = False


class TelemetryConfig(_Section):
    """`[telemetry]`: traces by OTLP/HTTP (the standard OTEL_* variables work as well)."""

    endpoint: str = ""  # e.g. http://127.0.0.1:4318/v1/traces ("": OTEL_* or no traces)
    service_name: str = "shipyard"
    include_content: bool = False  # model prompts and completions in the model spans


class LogsConfig(_Section):
    """`[logs]`: how processes log to stderr (`shipyard --log-format` overrides)."""

    format: Literal["human", "json"] = "human"  # json: one object a line, with the run id
    level: Literal["", "debug", "info", "warning", "error"] = ""  # "": warning; info for json


class WorkflowsConfig(_Section):
    # The installed plugins this project uses, by entry-point name (unset: every installed
    # one); the others' workflows, commands, tables and doctor lines stay out of it.
    enabled: list[str] | None = None
    # Modules that define the project's own workflows, found from this file's folder first.
    modules: list[str] = []


class ArtifactsConfig(_Section):
    """`[artifacts]`: where artifacts are shared. Without `url`, the state folder holds them;
    with it, an S3-compatible object store does, and the state folder is a read cache."""

    url: str = ""  # s3://BUCKET or s3://BUCKET/PREFIX
    endpoint_url: str = ""  # the store's API where it is not AWS (MinIO, Ceph, moto)
    region: str = ""

    _an_s3_url = field_validator("url")(_s3_url)
    _an_http_url = field_validator("endpoint_url")(_endpoint_url)


class ProviderConfig(_Section):
    """Limits on calls to one service (`[providers.NAME]`), held together by every process
    that shares the database (`_providers`); a writer or voice names its provider."""

    concurrency: int = Field(default=0, ge=0)  # calls at once; 0: no limit
    requests: int = Field(default=0, ge=0)  # calls begun in any `period_seconds`; 0: no limit
    period_seconds: float = Field(default=60.0, gt=0)
    # a call waits this long at most for a slot (or out a 429), then its step tries again
    max_wait_seconds: float = Field(default=600.0, gt=0)
    # a slot is free again this long after its call began, even if its process died: set it
    # above the longest call
    lease_seconds: float = Field(default=900.0, gt=0)


def _a_configured_provider(name: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("providers")
    if known is not None and name not in known:
        raise ValueError(
            f"names provider {name!r}, which is not configured: add [providers.{name}] "
            f"(configured: {', '.join(sorted(known)) or 'none'})"
        )
    return name


# A workflow setting that names a provider: checked against [providers] when the file is read.
ProviderName = Annotated[str, AfterValidator(_a_configured_provider)]


class FetchConfig(_Section):
    """`[fetch]`: the limits on fetching what users paste (a paper's link): untrusted servers
    (`_fetch`)."""

    max_bytes: int = Field(default=100_000_000, gt=0)  # a body larger than this is refused
    timeout_seconds: float = Field(default=120.0, gt=0)  # the whole fetch, redirects included
    max_redirects: int = Field(default=5, ge=0)
    allow_http: bool = False  # plain http:// links too
    # networks whose private, loopback or reserved addresses may be fetched (e.g. a server
    # on your own network, "10.0.0.0/8"); public addresses always may
    allow_networks: list[str] = []
    contact: str = ""  # said in the User-Agent (an e-mail or a URL), as arXiv asks
    # a host (and its subdomains) -> the provider whose quota paces requests to it
    providers: dict[str, ProviderName] = {}

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network (write e.g. 10.0.0.0/8)") from None
        return networks


class Config(_Section):
    """The whole configuration. `root` is the folder the file is in.

    The core's sections are fields; every other table belongs to a workflow, which reads it
    through its own settings model (validated when the file is read)."""

    root: Path = Path(".")
    state_dir: Path = Path(".shipyard")
    engine: EngineConfig = EngineConfig()
    artifacts: ArtifactsConfig = ArtifactsConfig()
    review: ReviewConfig = ReviewConfig()
    publish: PublishConfig = PublishConfig()
    verify: VerifyConfig = VerifyConfig()
    workflows: WorkflowsConfig = WorkflowsConfig()
    console: ConsoleConfig = ConsoleConfig()
    logs: LogsConfig = LogsConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    owners: dict[str, OwnerConfig] = {}
    smtp: SmtpConfig = SmtpConfig()
    providers: dict[str, ProviderConfig] = {}
    fetch: FetchConfig = FetchConfig()
    tables: dict[str, dict[str, Any]] = {}  # the workflows' own tables, as written

    @field_validator("providers")
    @classmethod
    def _plain_names(cls, providers: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name in providers:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
                raise ValueError(f"provider name {name!r}: use letters, digits, '_', '.', '-'")
        return providers

    @field_validator("state_dir")
    @classmethod
    def _a_folder_of_its_own(cls, state_dir: Path, info: ValidationInfo) -> Path:
        root = info.data.get("root", Path("."))
        resolved = (state_dir if state_dir.is_absolute() else root / state_dir).resolve()
        if resolved == Path(resolved.anchor) or resolved == Path.home().resolve():
            raise ValueError(f"{str(state_dir)!r} is a whole filesystem or home folder")
        if resolved.exists() and not resolved.is_dir():
            raise ValueError(f"{str(state_dir)!r} is a file, not a folder")
        return state_dir

    @model_validator(mode="after")
    def _mail_has_a_server(self) -> Config:
        mailed = sorted(name for name, owner in self.owners.items() if owner.email)
        if mailed and not self.smtp.host:
            raise ValueError(
                f"owner {mailed[0]!r} is reached by e-mail, but [smtp] names no host: "
                "set smtp.host (and port, sender)"
            )
        return self

    @property
    def console_url(self) -> str:
        """Where the console is reached, for links (`console.url`, else host and port)."""
        return (
            self.console.url.rstrip("/") + "/"
            if self.console.url
            else (f"http://{self.console.host}:{self.console.port}/")
        )

    @property
    def state(self) -> Path:
        """The state folder: system database, artifacts, workspaces."""
        return self.state_dir if self.state_dir.is_absolute() else self.root / self.state_dir

    def state_folder(self, *parts: str) -> Path:
        """A folder of the state folder's (`state_folder("cache", "tts")`), created; a
        symbolic link on the way is refused, so no write lands outside the state folder."""
        folder = confined(self.state, self.state.joinpath(*parts))
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def artifact_store(self) -> ArtifactStore:
        """The artifact store: the state folder's, mirrored on `[artifacts] url` if set."""
        shared = self.artifacts
        mirror = (
            ObjectStore(shared.url, endpoint_url=shared.endpoint_url, region=shared.region)
            if shared.url
            else None
        )
        return ArtifactStore(self.state_folder("artifacts"), mirror)

    @property
    def database_url(self) -> str:
        """The system database's URL, its `${NAME}` secrets filled in: never store it."""
        if self.engine.database_url:
            return expand_secrets(self.engine.database_url, key="engine.database_url")
        return f"sqlite:///{(self.state / 'shipyard.sqlite').resolve()}"

    @property
    def executor_id(self) -> str:
        return os.environ.get("SHIPYARD_EXECUTOR_ID") or self.engine.executor_id

    def resolve(self, path: str | Path) -> Path:
        """A path from the file, made absolute against the file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.root / p).resolve()

    def table(self, table: str) -> dict[str, Any]:
        """A workflow's table as written, without its profiles."""
        return {k: v for k, v in self.tables.get(table, {}).items() if k != PROFILES}

    def settings(self, model: type[S], table: str) -> S:
        """A workflow's settings: its table, validated by its model (defaults where absent)."""
        return model.model_validate(self.table(table), context=self.validation_context)

    @property
    def validation_context(self) -> dict[str, Any]:
        """What a workflow's settings are checked against: the providers configured, and the
        file's folder (where relative paths in it start)."""
        return {"providers": set(self.providers), "root": self.root}

    def with_profile(self, table: str, profile: str) -> Config:
        """A copy in which a workflow's table is overlaid with one of its profiles
        (`[TABLE.profiles.NAME]`): what `shipyard run --profile NAME` runs with."""
        profiles = self.tables.get(table, {}).get(PROFILES, {})
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(
                f"has no profile {profile!r}",
                key=f"{table}.{PROFILES}",
                hint=f"its profiles: {known}; add one as [{table}.{PROFILES}.{profile}]",
            )
        merged = _overlaid(self.table(table), profiles[profile])
        return self.model_copy(update={"tables": {**self.tables, table: merged}})

    def with_options(
        self, table: str, model: type[BaseModel], options: Mapping[str, str]
    ) -> Config:
        """A copy in which a run's options ({"key.in.table": value}: what `shipyard run WF
        INPUT --NAME VALUE` sets) are laid over a workflow's table, checked as the file's own
        settings are (ConfigError before the run exists)."""
        over: dict[str, Any] = {}
        for key, value in options.items():
            *parents, last = key.split(".")
            node = over
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        merged = _overlaid(self.table(table), over)
        _validated(model, merged, self.root / CONFIG_FILE, table, self.validation_context)
        return self.model_copy(update={"tables": {**self.tables, table: merged}})

    def with_table(self, table: str, settings: BaseModel) -> Config:
        """A copy with a workflow's table replaced by `settings` (for tests and tools)."""
        tables = {**self.tables, table: settings.model_dump(mode="json", exclude_defaults=True)}
        return self.model_copy(update={"tables": tables})

    def import_workflows(self) -> None:
        """Import the workflows this project runs: its enabled plugins and its own modules."""
        import_workflows(self.root, self.workflows.modules, self.workflows.enabled)

    @property
    def missing_plugins(self) -> list[str]:
        """The plugins `workflows.enabled` names that are not installed here."""
        installed = installed_plugins()
        return [name for name in self.workflows.enabled or () if name not in installed]

    def fingerprint(self, table: str | None = None) -> str:
        """A hash of every setting that shapes a run's output (part of the run id): the core's
        sections and the table of the workflow that runs."""
        data = self.model_dump(
            mode="json",
            exclude={
                "root",
                "state_dir",
                "engine",
                "workflows",
                "console",
                "logs",
                "owners",
                "smtp",
                "providers",
                "tables",
            },
        )
        if table is not None:
            data[table] = self.table(table)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate `shipyard.toml`: the core's sections, then each workflow's table
    with that workflow's settings model.

    With no path, looks in the current folder and its parents, and falls back to the defaults
    rooted in the current folder when there is no file at all.
    """
    file = Path(path) if path is not None else _find_config(Path.cwd())
    if file is None:
        config = Config(root=Path.cwd().resolve())
        config.import_workflows()
        return config
    if not file.is_file():
        raise ConfigError("no such file", file=str(file), hint="run `shipyard init` to create one")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(file)) from None
    _refuse_literal_credentials(data, file)
    core_keys = set(Config.model_fields) - {"root", "tables"}
    core = {key: value for key, value in data.items() if key in core_keys}
    tables = {key: value for key, value in data.items() if key not in core_keys}
    config = _validated(Config, {**core, "root": file.parent.resolve()}, file, "")
    # The workflows a project runs are named in its configuration (`workflows.enabled` and
    # `.modules`), so they are imported now, after the core's sections are read, and claim
    # their tables.
    config.import_workflows()
    claimed = claimed_tables()
    unknown = [
        key for key, value in tables.items() if key not in claimed or not isinstance(value, dict)
    ]
    if unknown and config.missing_plugins and all(isinstance(tables[k], dict) for k in unknown):
        # Most likely the tables of an enabled plugin that was uninstalled: kept as written,
        # unchecked, while everything else works (`shipyard doctor` says so too).
        log.warning(
            "%s: %s left unchecked: enabled workflow %s is not installed",
            file,
            ", ".join(f"[{key}]" for key in unknown),
            ", ".join(config.missing_plugins),
        )
    elif unknown:
        raise ConfigError(
            "is not a setting of shipyard or of any workflow it knows",
            key=unknown[0],
            file=str(file),
            hint=_left_out_hint(unknown[0]) or _unknown_tables_hint(unknown, claimed),
        )
    for table, claim in claimed.items():
        given = {k: v for k, v in tables.get(table, {}).items() if k != PROFILES}
        _check_table(claim, given, file, table, config.validation_context)
        profiles = tables.get(table, {}).get(PROFILES, {})
        if not isinstance(profiles, dict):
            raise ConfigError(
                "must be a table of profiles", key=f"{table}.{PROFILES}", file=str(file)
            )
        for name, profile in profiles.items():  # each profile, as it will run
            where = f"{table}.{PROFILES}.{name}"
            if not isinstance(profile, dict):
                raise ConfigError("must be a table", key=where, file=str(file))
            merged = _overlaid(given, profile)
            _check_table(claim, profile, file, where, config.validation_context, merged=merged)
    return config.model_copy(update={"tables": tables})


def _refuse_literal_credentials(data: object, file: Path, key: str = "") -> None:
    """A credential written into the file would be stored with every run: refuse it."""
    if isinstance(data, dict):
        for name, value in data.items():
            _refuse_literal_credentials(value, file, f"{key}.{name}" if key else str(name))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _refuse_literal_credentials(value, file, f"{key}[{index}]")
    elif isinstance(data, str) and data and _SECRET_KEY.search(key) and not secret_names(data):
        raise ConfigError(
            "is a secret written out: it would be stored with every run",
            key=key,
            file=str(file),
            hint=f'name it instead, e.g. {key.rsplit(".", 1)[-1]} = "${{SMTP_PASSWORD}}", and set '
            "SMTP_PASSWORD in the environment or the credentials file (docs/security.md)",
        )
    elif isinstance(data, str) and (found := literal_credential(data)):
        raise ConfigError(
            f"holds {found}, written out: it would be stored with every run",
            key=key,
            file=str(file),
            hint="name it as a secret, e.g. https://user:${SITE_TOKEN}@host/..., and set "
            "SITE_TOKEN in the environment or the credentials file (docs/security.md)",
        )


def _check_table(
    claim: SettingsTable,
    given: dict[str, Any],
    file: Path,
    prefix: str,
    context: dict[str, Any],
    *,
    merged: dict[str, Any] | None = None,
) -> None:
    unknown = sorted(set(given) - set(claim.model.model_fields))
    if unknown:  # refused even where the workflow's model would ignore it
        raise ConfigError(
            f"is not a setting of the {claim.workflow} workflow",
            key=f"{prefix}.{unknown[0]}",
            file=str(file),
            hint=f"its settings: {', '.join(claim.model.model_fields) or 'none'}",
        )
    _validated(claim.model, given if merged is None else merged, file, prefix, context)


def _overlaid(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`base` with `over` laid on it, table by table (a profile changes only what it names)."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _overlaid(merged[key], value)
        else:
            merged[key] = value
    return merged


def _validated(
    model: type[S],
    data: dict[str, Any],
    file: Path,
    prefix: str,
    context: dict[str, Any] | None = None,
) -> S:
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
        moved = _new_home(str(first["loc"][-1])) if first["type"] == "extra_forbidden" else ""
        raise ConfigError(
            first["msg"],
            key=key,
            file=str(file),
            hint=f"it belongs to {moved} now: move it there"
            if moved
            else f"{len(exc.errors())} problem(s); see docs/configuration.md",
        ) from None


def _new_home(key: str) -> str:
    """The workflow table (`[podcast.site]`) that has a setting named `key`, if one does."""
    import_workflows()  # only on this error path: the installed plugins claim their tables
    for table, claim in claimed_tables().items():
        for name, field in claim.model.model_fields.items():
            section = field.annotation
            if (
                isinstance(section, type)
                and issubclass(section, BaseModel)
                and key in section.model_fields
            ):
                return f"[{table}.{name}] (the {claim.workflow} workflow's)"
    return ""


def _left_out_hint(key: str) -> str:
    """Whether `[key]` belongs to an installed workflow that `workflows.enabled` leaves out."""
    import_workflows()  # only on this error path: every installed plugin claims its tables
    claim = claimed_tables().get(key)
    if claim is None:
        return ""
    return (
        f"[{key}] is the {claim.workflow} workflow's, which workflows.enabled leaves out: "
        "add its plugin there, or remove the table"
    )


def _unknown_tables_hint(keys: list[str], claimed: Mapping[str, SettingsTable]) -> str:
    """Each table that a workflow now owns, with its new name; else the known sections."""
    renames = [
        f"[{key}] to [{table}.{key}]"
        for key in keys
        for table, claim in claimed.items()
        if key in claim.model.model_fields
    ]
    if renames:
        return (
            "these tables belong to a workflow now: rename "
            + ", ".join(renames)
            + " (and their subtables the same way)"
        )
    known = sorted({*(set(Config.model_fields) - {"root", "tables"}), *claimed})
    return f"known sections: {', '.join(known)} (see docs/configuration.md)"


def enabled_plugins(path: Path | None = None) -> list[str] | None:
    """`workflows.enabled` of the project's file (`path`, else found from here), read alone:
    which plugins' commands the CLI offers. None (every installed plugin) when the file has no
    such list or cannot be read; the command that runs reads the file whole and says why."""
    file = path if path is not None else _find_config(Path.cwd())
    if file is None:
        return None
    try:
        enabled = tomllib.loads(file.read_text(encoding="utf-8"))["workflows"]["enabled"]
    except (OSError, KeyError, TypeError, UnicodeDecodeError, ValueError):
        return None
    if isinstance(enabled, list) and all(isinstance(name, str) for name in enabled):
        return enabled
    return None


def _find_config(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None
