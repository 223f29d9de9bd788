"""Configuration: one TOML file, `TURNOUT_*` environment overrides, validated at start.

Every setting has a default, so `turnout serve` with no file works. Unknown keys are errors (a
typo silently ignored is a setting silently not applied), and every error names the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from turnout.validation import field_message


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and what is wrong."""


# A limit of 0 (or less) would refuse every request or connection: refused at start instead.
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    listen: str = "127.0.0.1:8088"
    data_dir: str = "turnout-data"
    # The address clients reach this server at (used in the analytics.js settings it serves);
    # empty = taken from each request's Host header.
    public_url: str = ""
    # Bearer token for the management API and the dashboard sign-in; generated when empty.
    # At least MIN_ADMIN_TOKEN characters when set.
    admin_token: str = ""
    # Wrong admin tokens one client address may present within the window (dashboard sign-in,
    # management API and a protected /metrics together) before it is answered 429.
    auth_failure_limit: PositiveInt = 10
    auth_failure_window_s: PositiveSeconds = 600.0
    # Whether /metrics needs `Authorization: Bearer <admin token>` (open by default).
    metrics_auth: bool = False
    # Whether the API description (/dashboard/api-docs, /api/v1/openapi.json) is open to
    # anyone; by default it needs the dashboard sign-in or the bearer token.
    api_docs_public: bool = False
    # Fernet key for secrets at rest; generated into data_dir/secret.key when empty.
    secret_key: str = ""
    max_message_bytes: int = 32 * 1024
    max_request_bytes: int = 500 * 1024
    max_batch_messages: int = 2500
    cors_origins: list[str] = msgspec.field(default_factory=lambda: ["*"])
    role: Literal["all", "ingest", "deliver"] = "all"
    # Limits on connections (docs/deployment.md): SDKs send well under 1 KB of headers and
    # browsers rarely over 8 KB (cookies included), so 16 KB refuses only abuse.
    max_header_bytes: PositiveInt = 16 * 1024  # request line + headers; over it: 431
    max_headers: PositiveInt = 100  # over it: 431
    max_url_bytes: PositiveInt = 8 * 1024  # request target; over it: 414
    header_timeout_s: PositiveSeconds = 10.0  # for a request head to arrive whole
    body_timeout_s: PositiveSeconds = 30.0  # for a body to arrive whole, from its head's end
    keep_alive_timeout_s: PositiveSeconds = 5.0  # idle between requests, then closed
    max_connections: PositiveInt = 1000  # open at once; beyond it new connections get 503


class LogConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    backend: Literal["sqlite", "nats"] = "sqlite"
    # "full" syncs every group commit to disk (survives power loss); "normal" survives a
    # process crash only, and is faster.
    sync: Literal["full", "normal"] = "full"
    retention_hours: float = 168.0
    max_backlog: int = 50_000_000
    min_free_mb: int = 256
    url: str = "nats://127.0.0.1:4222"
    stream: str = "turnout"
    replicas: int = 1
    partitions: int = 16


class StoreConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str = ""  # empty = SQLite in data_dir; "postgresql://..." for several processes


class DeliveryConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    linger_ms: float = 20.0  # how long a lane waits to fill a batch
    concurrency: int = 8  # requests a lane may have in flight at once
    window: int = 20_000  # unresolved messages a lane may hold in memory
    per_person_window: int = 1_000  # one person's messages held before the rest spill to the log
    retry_window_hours: float = 72.0
    max_backoff_s: float = 300.0


class SourceConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    write_key: str


# Requests per second a connection may send: above zero (a limit of 0 would send nothing, ever)
# and at most a million (more is no limit at all). The one home of this rule: the file, the
# management API and the dashboard all check it against these bounds.
RATE_LIMIT_MIN_EXCLUSIVE = 0.0
RATE_LIMIT_MAX = 1_000_000.0
RateLimit = Annotated[float, msgspec.Meta(gt=RATE_LIMIT_MIN_EXCLUSIVE, le=RATE_LIMIT_MAX)]


class ConnectionConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    destination: str
    sources: list[str] = msgspec.field(default_factory=list)
    enabled: bool = True
    rate_limit: RateLimit | None = None  # None: the destination's default
    settings: dict[str, Any] = msgspec.field(default_factory=dict)
    # The connection's playbook (docs/playbooks.md): consent categories it needs, what to do with
    # a call that carries no consent, and the `[[connections.playbook]]` rules, in order.
    consent: list[str] = msgspec.field(default_factory=list)
    consent_missing: str = "deliver"  # or "drop"; checked with the playbook, located alike
    playbook: list[dict[str, Any]] = msgspec.field(default_factory=list)


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, dict=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    delivery: DeliveryConfig = msgspec.field(default_factory=DeliveryConfig)
    sources: list[SourceConfig] = msgspec.field(default_factory=list)
    connections: list[ConnectionConfig] = msgspec.field(default_factory=list)

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir)

    @property
    def directory(self) -> Path:
        """The configuration file's directory: playbook functions' files are found from it.
        Not a setting (the file cannot name it): `load` records where the file was."""
        found = self.__dict__.get("directory")
        return found if isinstance(found, Path) else Path.cwd()

    @directory.setter
    def directory(self, value: Path) -> None:
        self.__dict__["directory"] = value

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.server.listen.rpartition(":")
        return host or "127.0.0.1", int(port)


def resolve_secret(value: Any, where: str, environ: Mapping[str, str] | None = None) -> Any:
    """`env:NAME` reads the secret from the environment, so it never sits in the file; in a
    table (e.g. a webhook's headers) each value may be one."""
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {key: resolve_secret(v, f"{where}.{key}", env) for key, v in value.items()}
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in env:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return env[name]
    return value


def load(path: Path | None, environ: dict[str, str] | None = None) -> Config:
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such configuration file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _apply_environment(raw, os.environ if environ is None else environ)
    try:
        config = msgspec.convert(raw, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"configuration: {field_message(exc)}") from None
    if path is not None:
        config.directory = path.resolve().parent
    _check(config)
    _check_playbooks(config)
    for connection in config.connections:
        connection.settings = {
            key: resolve_secret(value, f"connections.{connection.name}.settings.{key}", environ)
            for key, value in connection.settings.items()
        }
    return config


def _apply_environment(raw: dict[str, Any], environ: Any) -> None:
    """`TURNOUT_LISTEN` overrides `[server] listen`; `TURNOUT_LOG_BACKEND` `[log] backend`."""
    sections = {
        "server": ServerConfig,
        "log": LogConfig,
        "store": StoreConfig,
        "delivery": DeliveryConfig,
    }
    for section, struct in sections.items():
        prefix = "TURNOUT_" if section == "server" else f"TURNOUT_{section.upper()}_"
        for field in struct.__struct_fields__:
            value = environ.get(prefix + field.upper())
            if value is not None:
                if field == "cors_origins":
                    raw.setdefault(section, {})[field] = [v.strip() for v in value.split(",")]
                else:
                    raw.setdefault(section, {})[field] = value


MIN_ADMIN_TOKEN = 32  # characters: a configured token must resist guessing as a generated one


def _check(config: Config) -> None:
    token = config.server.admin_token
    if token and len(token) < MIN_ADMIN_TOKEN:
        raise ConfigError(
            f"server.admin_token (TURNOUT_ADMIN_TOKEN): {len(token)} characters, at least"
            f" {MIN_ADMIN_TOKEN} are required; generate one with:"
            " python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    try:
        config.host_port  # noqa: B018  # validates the listen address
    except ValueError:
        raise ConfigError(f"server.listen: {config.server.listen!r} is not HOST:PORT") from None
    names = [s.name for s in config.sources]
    if len(set(names)) != len(names):
        raise ConfigError("sources: two sources have the same name")
    keys = [s.write_key for s in config.sources]
    if len(set(keys)) != len(keys):
        raise ConfigError("sources: two sources have the same write_key")
    connection_names = [c.name for c in config.connections]
    if len(set(connection_names)) != len(connection_names):
        raise ConfigError("connections: connection names must be unique")
    for connection in config.connections:
        for source in connection.sources:
            if source not in names:
                raise ConfigError(
                    f"connections.{connection.name}.sources: no source named {source!r}"
                )


def _check_playbooks(config: Config) -> None:
    """Every connection's playbook compiles (functions loaded from their files), or the start is
    refused with the connection and the playbook's own location of the problem."""
    from turnout.playbooks import Playbook, PlaybookError

    for connection in config.connections:
        try:
            Playbook.compile(
                connection.playbook,
                connection.consent,
                connection.consent_missing,
                base_dir=config.directory,
                allow_functions=True,
            )
        except PlaybookError as exc:
            raise ConfigError(f"connections.{connection.name}: {exc}") from None
