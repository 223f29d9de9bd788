"""`turnout privacy ...`: privacy requests from the command line, through the running server.

Through the server's management API, not the files: erasing calls from the log needs the log's
one writer, which is the running server; the request is recorded as made by the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

privacy_app = typer.Typer(no_args_is_help=True, add_completion=False)

Ids = Annotated[list[str], typer.Argument(help="userIds (anonymousIds with --anonymous)")]
Anonymous = Annotated[bool, typer.Option("--anonymous", help="The ids are anonymousIds")]
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="turnout.toml to read")]


def _request(config: Path | None, method: str, path: str, body: Any = None) -> Any:
    from turnout.cli import _admin, _load

    base, headers = _admin(_load(config))
    try:
        response = httpx.request(
            method,
            base + path,
            json=body,
            headers={**headers, "X-Turnout-Origin": "cli"},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        typer.secho(f"error: cannot reach Turnout at {base}: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        typer.secho(f"error: {response.status_code} {response.text}", fg="red", err=True)
        raise typer.Exit(1)
    return response.json()


def _submit(action: str, ids: list[str], anonymous: bool, config: Path | None) -> None:
    body = {"action": action, "anonymous_ids" if anonymous else "user_ids": ids}
    result = _request(config, "POST", "/privacy/requests", body)
    typer.echo(f"{result['id']} {result['status']}")


@privacy_app.command()
def suppress(ids: Ids, anonymous: Anonymous = False, config: ConfigOption = None) -> None:
    """Stop taking in and delivering these people's calls, from now on."""
    _submit("suppress", ids, anonymous, config)


@privacy_app.command()
def unsuppress(ids: Ids, anonymous: Anonymous = False, config: ConfigOption = None) -> None:
    """Take in and deliver these people's calls again, from now on."""
    _submit("unsuppress", ids, anonymous, config)


@privacy_app.command()
def delete(
    ids: Ids,
    anonymous: Anonymous = False,
    suppress_too: Annotated[
        bool, typer.Option("--suppress", help="Suppress them as well (suppress_and_delete)")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Delete these people's calls and records from Turnout (the erasure runs in the server)."""
    _submit("suppress_and_delete" if suppress_too else "delete", ids, anonymous, config)


@privacy_app.command()
def status(
    request_id: Annotated[str, typer.Argument(help="The request's id (pr_...)")],
    config: ConfigOption = None,
) -> None:
    """Show a request's status, step by step, as JSON."""
    typer.echo(json.dumps(_request(config, "GET", f"/privacy/requests/{request_id}"), indent=2))
