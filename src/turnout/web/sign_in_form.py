"""The sign-in form's CSRF protection, without server state.

Before sign-in there is no session to hold a CSRF token: keeping one per anonymous visitor
would let anyone fill the server's memory (or its session table) by loading the sign-in page.
Instead the browser gets a random value in a cookie, and the form carries that value signed
with a timestamp (itsdangerous). A sign-in is accepted only when both come back and match: a
page on another site can neither read the form's value nor send the cookie (`SameSite=Strict`),
so it cannot sign a browser in; and loading the form costs the server nothing.
"""

from __future__ import annotations

import hmac
import re
import secrets

from itsdangerous import BadSignature, TimestampSigner
from starlette.requests import Request

COOKIE = "turnout_sign_in"
MAX_AGE = 3600  # seconds a sign-in form stays valid
_NONCE = re.compile(r"[A-Za-z0-9_-]{32}")  # what `secrets.token_urlsafe(24)` makes


class SignInForms:
    def __init__(self, secret: bytes | None = None) -> None:
        # One key per process is enough: a form is signed and checked by the process that
        # serves the dashboard (its sessions live in that process's memory too).
        self._signer = TimestampSigner(
            secret or secrets.token_bytes(32), salt="turnout.dashboard.sign-in"
        )

    def issue(self, request: Request) -> tuple[str, str]:
        """(cookie value, form value): the browser's cookie value when it has one (so two open
        sign-in tabs both work), else a new one."""
        nonce = request.cookies.get(COOKIE, "")
        if not _NONCE.fullmatch(nonce):
            nonce = secrets.token_urlsafe(24)
        return nonce, self._signer.sign(nonce).decode()

    def valid(self, request: Request, form_value: str) -> bool:
        nonce = request.cookies.get(COOKIE, "")
        if not nonce or not form_value:
            return False
        try:
            signed = self._signer.unsign(form_value, max_age=MAX_AGE).decode()
        except (BadSignature, UnicodeDecodeError):
            return False
        return hmac.compare_digest(signed.encode(), nonce.encode())
