"""A person's page: every call of one userId or anonymousId the log keeps, in the order received,
with what each connection made of it (the same look-up as `turnout trace --user`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from turnout.history import IDENTITIES, Identity
from turnout.manage.views import person_view
from turnout.web.sessions import Session
from turnout.web.site import Site


def routes(site: Site) -> list[Route]:
    async def person(request: Request, session: Session) -> Response:
        q = request.query_params
        by = q.get("by", "userId")
        identity: Identity = "anonymousId" if by == "anonymousId" else "userId"
        value = q.get("id", "").strip()
        after = q.get("after", "0")
        found = None
        if value:
            start = int(after) if after.isdigit() else 0
            found = person_view(await site.messages.person(identity, value, after=start))
        return site.render(
            request,
            "person.html",
            session,
            identity=identity,
            identities=IDENTITIES,
            value=value,
            found=found,
            continued=after not in ("", "0"),
            retention_hours=site.config.log.retention_hours,
        )

    return [Route("/people", site.page(person))]
