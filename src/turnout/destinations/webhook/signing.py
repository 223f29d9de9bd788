"""Standard Webhooks headers: which delivery this is, when it was attempted, and who sent it.

`webhook-id` is derived from the messages' `messageId`s, never random, so a re-sent request (a
retry, a replay, a re-delivery after a crash) carries the id of the first one and a receiver
can drop the duplicate. `webhook-signature` is `v1,<base64 HMAC-SHA256>` of
"{id}.{timestamp}.{body}" keyed with the secret's bytes, computed by the `standardwebhooks`
package, so any receiver using a Standard Webhooks library verifies it as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook as StandardWebhook

ID_PREFIX = "msg_"
_ID_HEX = 32  # 128 bits of the digest: unique enough, short enough to log


def webhook_id(message_ids: Sequence[str], *, batch: bool) -> str:
    """The delivery id of a request carrying these messages, the same on every re-send.

    A batch hashes all its message ids in order, marked as a batch, so a batch of one and the
    same message sent alone are different deliveries with different bodies and ids.
    """
    text = ("batch\n" if batch else "") + "\n".join(message_ids)
    return ID_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:_ID_HEX]


class Signer:
    """Signs request bodies with one connection's `whsec_...` secret."""

    def __init__(self, secret: str) -> None:
        self._webhook = StandardWebhook(secret)

    def signature(self, delivery_id: str, timestamp: int, body: bytes) -> str:
        when = datetime.fromtimestamp(timestamp, tz=UTC)
        return self._webhook.sign(delivery_id, when, body.decode("utf-8"))


def headers(delivery_id: str, timestamp: int, body: bytes, signer: Signer | None) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt; no signature without a secret."""
    found = {"webhook-id": delivery_id, "webhook-timestamp": str(timestamp)}
    if signer is not None:
        found["webhook-signature"] = signer.signature(delivery_id, timestamp, body)
    return found
