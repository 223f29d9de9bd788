"""Finding the write key: Basic auth (key as user, empty password), else the body's `writeKey`.

analytics-next, analytics-node and analytics-python send both; RudderStack SDKs only the header;
MetaRouter's mobile SDKs only a `writeKey` on each event of a batch. Any other scheme (Segment's
OAuth `Bearer`) leaves the key to the body.
"""

from __future__ import annotations

import base64
import binascii

from turnout.ingest.errors import unauthorized


def key_from_header(authorization: bytes | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=False).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("Authorization: Basic credentials are not valid base64") from None
    # Segment documents "key:" but older clients send the bare key; accept both.
    key = decoded.partition(":")[0]
    if not key:
        raise unauthorized("Authorization: the write key is empty")
    return key
