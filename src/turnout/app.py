"""Builds the running service from configuration. Wiring only: no behaviour lives here."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from turnout.config import Config, ConfigError
from turnout.datadir import create_private, prepare
from turnout.delivery.coordination import Coordinator, LocalCoordinator
from turnout.delivery.manager import DeliveryManager
from turnout.destinations import registry
from turnout.history import History
from turnout.ingest.accept import Ingestor, Limits
from turnout.ingest.routes import build_tracking_app
from turnout.log.base import PartitionedLog
from turnout.log.sqlite import SQLiteLog
from turnout.manage.connections import Connections
from turnout.manage.dead_letters import DeadLetters
from turnout.manage.messages import Messages
from turnout.manage.playbooks import Playbooks
from turnout.manage.services import Services
from turnout.manage.sources import Sources
from turnout.metrics import REGISTRY
from turnout.playbooks.revisions import save_revision
from turnout.privacy.service import PrivacyService
from turnout.privacy.suppression import Hasher, PrivacyList
from turnout.store.models import Connection, Source
from turnout.store.secrets import SecretBox, load_or_create_key
from turnout.store.sql_store import SqlStore
from turnout.store.sqlite import Store
from turnout.tap import Tap
from turnout.web.api import build_api
from turnout.web.dashboard import build_dashboard
from turnout.web.token_check import TokenCheck

logger = logging.getLogger("turnout")

DEFAULT_SOURCE = "default"


@dataclass
class FirstStart:
    """What `turnout serve` prints once: credentials generated for the user."""

    write_key: str | None = None
    admin_token: str | None = None
    notes: list[str] = field(default_factory=list)


class Turnout:
    """The parts of one running Turnout process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        data = config.data_path
        prepare(data)  # first: everything below may create files in it
        self.tap = Tap()
        key = load_or_create_key(data, config.server.secret_key or None)
        self.box = SecretBox(key)
        self.privacy_list = PrivacyList(Hasher(key))
        self.store: SqlStore = self._make_store()
        self.log: PartitionedLog = self._make_log()
        self.ingestor = Ingestor(
            self.log,
            self.sources,
            self.store.add_rejects,
            self.tap,
            Limits(
                max_message_bytes=config.server.max_message_bytes,
                max_request_bytes=config.server.max_request_bytes,
                max_batch_messages=config.server.max_batch_messages,
            ),
            privacy=self.privacy_list,
        )
        self.delivery = self._make_delivery()
        self.delivery.playbook_dir = config.directory
        self.delivery.privacy = self.privacy_list
        self.privacy = PrivacyService(
            self.store, self.log, self.box, self.privacy_list, runs=config.server.role != "ingest"
        )
        self.privacy.delivery = self.delivery
        self.services = self._make_services()
        self.admin_token = ""
        self.first_start = FirstStart()
        self.ready = False
        self.on_ready: Callable[[], None] | None = None

    def _make_store(self) -> SqlStore:
        url = self.config.store.url
        secret_fields = lambda name: registry.get(name).secret_fields  # noqa: E731
        if url.startswith(("postgresql://", "postgres://")):
            if not self.config.server.secret_key:
                raise ConfigError(
                    "server.secret_key: required with a PostgreSQL store, and the same in every"
                    " process (each process must open the secrets the others sealed);"
                    " generate one with: python -c 'from cryptography.fernet import Fernet;"
                    " print(Fernet.generate_key().decode())'"
                )
            from turnout.store.postgres import PostgresStore

            return PostgresStore(url, self.box, secret_fields)
        if url:
            raise ConfigError(f"store.url: {url!r} is not a postgresql:// URL (empty = SQLite)")
        return Store(self.config.data_path / "store.db", self.box, secret_fields)

    def _make_delivery(self) -> DeliveryManager:
        coordinator: Coordinator = LocalCoordinator(self.log.partitions)
        if self.config.log.backend == "nats":
            from turnout.log.nats import NATSLog
            from turnout.log.nats_coordination import NATSCoordinator

            assert isinstance(self.log, NATSLog)
            coordinator = NATSCoordinator(self.log)
        return DeliveryManager(
            self.log,
            coordinator,
            self.store,
            registry.get,
            self.config.delivery,
            self.tap,
            self.config.log.retention_hours,
        )

    def _make_services(self) -> Services:
        """The management services: the one place they are built, for web/ and the CLI."""
        delivers = self.config.server.role != "ingest"
        history = History(self.log, self.store)
        connections = Connections(self.store, self.delivery, delivers=delivers)
        return Services(
            connections=connections,
            sources=Sources(self.store, connections.restart_fed_by),
            dead_letters=DeadLetters(self.store, self.delivery, connections, delivers=delivers),
            messages=Messages(self.store, history, self.tap),
            playbooks=Playbooks(
                self.store, history, self.delivery, self.config.directory, delivers=delivers
            ),
            privacy=self.privacy,
        )

    def _make_log(self) -> PartitionedLog:
        settings = self.config.log
        if settings.backend == "nats":
            from turnout.log.nats import NATSLog

            return NATSLog(settings)
        return SQLiteLog(
            self.config.data_path / "log.db",
            synchronous=settings.sync.upper(),
            max_entries=settings.max_backlog,
            min_free_bytes=settings.min_free_mb * 1024 * 1024,
        )

    def sources(self) -> Mapping[str, Source]:
        return self.store.sources_by_key

    async def start(self) -> None:
        await self.store.start()
        await self.log.start()
        await self.privacy.start()
        await self._apply_file_config()
        self.admin_token = self._admin_token()
        if self.config.server.role != "ingest":
            await self.delivery.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        if self.config.server.role != "ingest":
            await self.delivery.stop()
        await self.privacy.close()
        await self.log.close()
        await self.store.close()

    async def _apply_file_config(self) -> None:
        """Sources and connections declared in the file are (re)applied at every start."""
        for source in self.config.sources:
            await self.store.put_source(Source(name=source.name, write_key=source.write_key))
        for declared in self.config.connections:
            await self.store.put_connection(
                Connection(
                    name=declared.name,
                    destination=declared.destination,
                    settings=declared.settings,
                    sources=declared.sources,
                    enabled=declared.enabled,
                    rate_limit=declared.rate_limit,
                    origin="file",
                )
            )
            await save_revision(
                self.store,
                declared.name,
                declared.playbook,
                declared.consent,
                declared.consent_missing,
                "file",
            )
        if not await self.store.list_sources():
            key = "wk_" + secrets.token_urlsafe(18)
            await self.store.put_source(Source(name=DEFAULT_SOURCE, write_key=key))
            self.first_start.write_key = key

    def _admin_token(self) -> str:
        if self.config.server.admin_token:
            return self.config.server.admin_token
        path: Path = self.config.data_path / "admin.token"
        if path.exists():
            return path.read_text().strip()
        token = "adm_" + secrets.token_urlsafe(24)
        create_private(path, token.encode())
        self.first_start.admin_token = token
        return token


class FrontDoor:
    """The process's ASGI app: `/v1/...` straight to the tracking API, the rest to FastAPI.

    Why not `app.mount("/v1", ...)`: a mount runs every request through Starlette's middleware
    stack and router first (seven layers; going around them gave single-event requests 14% more
    throughput), and the tracking API needs none of them. The scope it receives is the one a mount
    would give it (`root_path` ending in `/v1`), so it behaves the same either way.
    """

    PREFIX = "/v1"
    BELOW = PREFIX + "/"

    def __init__(self, framework: FastAPI, tracking: ASGIApp | None) -> None:
        self.framework = framework
        self.tracking = tracking

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracking = self.tracking
        if (
            tracking is not None
            and scope["type"] == "http"
            and scope["path"].startswith(self.BELOW)
        ):
            scope = dict(scope)
            scope["root_path"] = scope.get("root_path", "") + self.PREFIX
            await tracking(scope, receive, send)
            return
        await self.framework(scope, receive, send)


def build_app(config: Config, turnout: Turnout | None = None) -> FrontDoor:
    service = turnout or Turnout(config)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        if service.on_ready is not None:
            service.on_ready()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Turnout",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # FastAPI's telemetry hooks read the environment on every request: off on the hot path.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.turnout = service

    async def health(_: Request) -> Response:
        if not service.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok"})

    tokens = TokenCheck(
        lambda: service.admin_token,
        config.server.auth_failure_limit,
        config.server.auth_failure_window_s,
    )

    async def metrics_page(request: Request) -> Response:
        if config.server.metrics_auth:
            refused = tokens.bearer(request, "metrics")
            if refused is not None:
                return JSONResponse(refused.body(), refused.status, headers=refused.headers)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def home(_: Request) -> Response:
        return RedirectResponse("/dashboard/")

    app.add_route("/health", health, methods=["GET"])
    app.add_route("/metrics", metrics_page, methods=["GET"])
    app.add_route("/", home, methods=["GET"])
    tracking = None
    if config.server.role != "deliver":
        tracking = build_tracking_app(
            service.ingestor,
            service.sources,
            config.server.public_url,
            config.server.cors_origins,
        )
    api = build_api(service.services, service.config, tokens)
    app.mount("/api/v1", api)
    app.mount("/dashboard", build_dashboard(service.services, service.config, tokens, api.openapi))
    return FrontDoor(app, tracking)
