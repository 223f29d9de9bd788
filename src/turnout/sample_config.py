"""The commented configuration `turnout init` writes.

The `[server]`, `[log]` and `[delivery]` part is written here; each connection example is
generated from a registered destination's `fields` (label, help, default, secret), so every
destination, a plugin's too, is offered with its settings and their defaults. The first is
active; the others are commented out.
"""

from __future__ import annotations

import json
from typing import Any

from turnout.destinations import registry
from turnout.destinations.base import Destination, SettingField

COMMENT_COLUMN = 34  # where a line's trailing comment starts, when the line leaves room

HEAD = """# Turnout configuration. Every setting shown has the default it would have if left out,
# except the examples under [[sources]] and [[connections]].

[server]
listen = "127.0.0.1:8088"        # TURNOUT_LISTEN
data_dir = "turnout-data"         # TURNOUT_DATA_DIR: SQLite log, store, keys
public_url = ""                   # how browsers reach this server; empty = from each request
admin_token = ""                  # management API / dashboard; 32+ characters; generated if empty
auth_failure_limit = 10           # wrong admin tokens per client address in the window: then 429
auth_failure_window_s = 600
metrics_auth = false              # true: /metrics needs Authorization: Bearer <admin token>
api_docs_public = false           # true: the API description needs no sign-in
max_message_bytes = 32768         # per call (Segment's limit)
max_request_bytes = 512000        # per request (500 KB)
max_batch_messages = 2500
cors_origins = ["*"]
max_header_bytes = 16384          # request line + headers; over it: 431
max_headers = 100                 # over it: 431
max_url_bytes = 8192              # over it: 414
header_timeout_s = 10             # a request head not whole by then: connection closed
body_timeout_s = 30               # a body not whole by then (from its head): connection closed
keep_alive_timeout_s = 5          # an idle connection is closed after this
max_connections = 1000            # open at once; beyond it: 503 + Retry-After

[log]
backend = "sqlite"                # "sqlite" (one process) or "nats" (several)
sync = "full"                     # "full": survives power loss; "normal": survives crashes
retention_hours = 168             # entries every connection has finished with are kept this long

[delivery]
linger_ms = 20                    # wait this long to fill a batch
concurrency = 8                   # requests in flight per connection
retry_window_hours = 72           # then a message is dead-lettered
max_backoff_s = 300

[[sources]]
name = "web"
write_key = "change-me"

"""


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string


def _line(text: str, comment: str) -> str:
    return f"{text.ljust(COMMENT_COLUMN - 1)} # {comment}" if comment else text


def _env_name(destination: Destination, name: str) -> str:
    return f"{destination.name}_{name}".upper().replace("-", "_").replace(".", "_")


def _setting(destination: Destination, f: SettingField) -> list[str]:
    """One setting, its wording above it: required ones active with a placeholder (a secret
    read from the environment), optional ones commented out with their default."""
    about = f"{f.label}{' (required)' if f.required else ''}. {f.help.rstrip('.')}."
    if f.choices:
        about += " One of: " + ", ".join(f.choices) + "."
    if f.kind == "secret":
        value = f"env:{_env_name(destination, f.name)}"
    elif f.default is not None:
        value = f.default
    elif f.kind == "url":
        value = "https://example.com/"
    else:
        value = f"your-{f.name.replace('_', '-')}"
    text = f"{f.name} = {_toml(value)}"
    return [f"# {about}", text if f.required else f"# {text}"]


def connection_example(destination: Destination, source: str = "web") -> list[str]:
    """A `[[connections]]` block for `destination`, from its settings fields."""
    lines = [
        f"# {destination.title}: destination = {_toml(destination.name)}.",
        "[[connections]]",
        f"name = {_toml(destination.name)}",
        f"destination = {_toml(destination.name)}",
        _line(f"sources = [{_toml(source)}]", "empty = every source"),
        _line(
            f"rate_limit = {destination.default_rate_limit:g}",
            f"requests/s to {destination.title}",
        ),
        "# Playbook (docs/playbooks.md): consent categories needed (default none), what to do",
        '# with a call that carries no consent ("deliver", the default, or "drop"), and rules.',
        '# consent = ["marketing"]',
        '# consent_missing = "deliver"',
        "# [[connections.playbook]]",
        "# when = 'type = \"track\" and event = \"Test Event\"'",
        "# drop = true",
        "",
        "[connections.settings]",
    ]
    tables = [f for f in destination.fields if f.kind == "table"]
    for f in destination.fields:
        if f.kind != "table":
            lines += _setting(destination, f)
    for f in tables:
        secret = f.name in destination.secret_fields
        example = f"env:{_env_name(destination, f.name)}" if secret else "value"
        lines += [
            "",
            f"# {f.label}: name = value pairs. {f.help.rstrip('.')}.",
            f"# [connections.settings.{f.name}]",
            f"# Name = {_toml(example)}",
        ]
    return lines


def sample() -> str:
    """The whole file: the server part, then one example per registered destination."""
    blocks = []
    for index, destination in enumerate(registry.all_destinations()):
        lines = connection_example(destination)
        if index:  # only the first is active: the others are there to be uncommented
            lines = [line if line.startswith("# ") else f"# {line}".rstrip() for line in lines]
        blocks.append("\n".join(lines))
    return HEAD + "\n\n".join(blocks) + "\n"


SAMPLE = sample()
