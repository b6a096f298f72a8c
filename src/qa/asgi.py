"""A request's body at the ASGI level, for the middleware of the HTTP edges.

In: an ASGI `receive`. Out: `read_body`, the whole body (None when the client left before
it ended), and `replaying`, a `receive` that hands a body read ahead to the app once and
then is the client's again, so a disconnect the app waits for still arrives. `qa.api`
recodes a body sent in another charset with them, and `qa.mcp_server` checks a body before
the MCP SDK reads it; the size of the body is capped before either (`qa.api.Hardening`).
"""

from __future__ import annotations

from starlette.types import Message, Receive


async def read_body(receive: Receive) -> bytes | None:
    """Every chunk of the request's body joined, or None if the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` whose first message is `body`, whole; after it, `receive`'s."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
