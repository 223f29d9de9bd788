"""The management services of one process, as `app.py` builds them and hands them out."""

from __future__ import annotations

from dataclasses import dataclass

from turnout.manage.connections import Connections
from turnout.manage.dead_letters import DeadLetters
from turnout.manage.messages import Messages
from turnout.manage.playbooks import Playbooks
from turnout.manage.sources import Sources
from turnout.privacy.service import PrivacyService


@dataclass(frozen=True, slots=True)
class Services:
    """Built once per process: each service holds the parts it needs (store, log, delivery)
    and nobody else reaches those parts to manage anything."""

    connections: Connections
    sources: Sources
    dead_letters: DeadLetters
    messages: Messages
    playbooks: Playbooks
    privacy: PrivacyService  # suppression and deletion requests (`turnout.privacy`)
