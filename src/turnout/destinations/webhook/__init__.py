"""Webhook destination: every call POSTed, as stored, to an address the user gives.

Stages, in the order data flows: `settings` (the address, headers, signing secret), `mapping`
(message to the call to post, pure), `signing` (Standard Webhooks headers), `client` (send,
classify with the shared HTTP helpers), and `destination` (the plugin the registry hands to the
delivery lane).
"""

from turnout.destinations.webhook.destination import Webhook
from turnout.destinations.webhook.settings import WebhookSettings

__all__ = ["Webhook", "WebhookSettings"]
