"""Who may write: a FastAPI dependency for the routes that change state (upload, delete).

In: `Settings.api_token` (from QA_API_TOKEN). Out: `authorize` (`token_accepted`, throttled
per client), the one check of a write's token, used by every edge that writes: true when no
token is set (a server on loopback, the default), else only for the token itself, compared
in constant time. Over
HTTP, `require_token` wants `Authorization: Bearer <token>` and answers 401 with a JSON
detail; the web chat (`qa.ui`) takes it from its *Access token* field. The server refuses
to listen beyond loopback without a token (`check_exposure`), and the app refuses any
request that reached it beyond loopback without one (`reached_beyond_loopback`, whatever
launched it), so "no token" means "only this machine can reach it". Gradio's own upload
route, which a browser calls without any header of ours, takes the token from the
TOKEN_COOKIE cookie that the chat's *Access token* field sets (`given_token`;
`qa.api.Hardening` checks it before anything is read).

Wrong tokens are throttled per client (`TokenThrottle`, one per server, shared by the HTTP
routes and the web chat): after FAILED_TOKENS_ALLOWED wrong tokens within
FAILED_TOKEN_WINDOW seconds, whatever the client asks that needs the token is refused (HTTP
429 with `Retry-After`; `/v1` and `/mcp` too) until the oldest of them leaves the window,
even with the right token, so a guesser learns nothing meanwhile. A client is its address
(an IPv6 one by its /64); behind a proxy every client shares the proxy's. A missing token is
no guess and is not counted.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import threading
import time
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Request
from starlette.requests import cookie_parser

from qa.config import LOOPBACK_HOSTS, Settings, load_settings
from qa.errors import BadSetting, TooManyAttempts

FAILED_TOKENS_ALLOWED = 10  # wrong tokens one client may send within FAILED_TOKEN_WINDOW
FAILED_TOKEN_WINDOW = 60.0  # seconds
MAX_TRACKED_CLIENTS = 10_000  # clients remembered; beyond, the one quiet longest is forgotten
SHARED_CLIENT = "unknown"  # the one bucket of every client whose address is unknown
TOKEN_COOKIE = "qa_token"  # set by the chat's page from its Access token field (`qa.ui`)


def _settings(request: Request) -> Settings:
    """The app's settings (its pipeline's), else the environment's."""
    pipeline = getattr(request.app.state, "pipeline", None)
    settings = getattr(pipeline, "settings", None)
    return settings if isinstance(settings, Settings) else load_settings()


def token_accepted(settings: Settings, given: object) -> bool:
    """May a write go ahead with the token `given` (None: none was sent)? Yes when no token
    is set; otherwise only when `given` is the token (surrounding spaces aside, on both:
    a token set as 'secret ' was refused whatever was sent)."""
    token = settings.api_token
    if not token:
        return True
    return isinstance(given, str) and hmac.compare_digest(given.strip().encode(),
                                                          token.strip().encode())


def given_token(authorization: str, cookie: str = "") -> str | None:
    """The token a request presents (None: none): `Authorization: Bearer <token>`, else
    the TOKEN_COOKIE cookie of its `Cookie` header, which the chat's page writes URL-encoded
    (`encodeURIComponent`). Only Gradio's upload route looks at the cookie; every other
    write wants the header."""
    scheme, _, bearer = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return bearer
    value = cookie_parser(cookie).get(TOKEN_COOKIE) if cookie else None
    return urllib.parse.unquote(value) if value else None


class TokenThrottle:
    """Wrong tokens per client within a sliding window. Bounded (at most `max_clients`
    clients, `allowed` times each) and thread-safe: FastAPI runs the token check in its
    threadpool, the web chat in Gradio's workers. `clock` is injectable for tests."""

    def __init__(self, allowed: int = FAILED_TOKENS_ALLOWED,
                 window: float = FAILED_TOKEN_WINDOW, max_clients: int = MAX_TRACKED_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if allowed < 1 or window <= 0 or max_clients < 1:
            raise ValueError(f"bad throttle: allowed={allowed!r}, window={window!r}, "
                             f"max_clients={max_clients!r}")
        self.allowed, self.window, self.max_clients = allowed, window, max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    @property
    def tracked(self) -> int:
        """How many clients it remembers (not `__len__`: an empty throttle must stay truthy)."""
        return len(self._failures)

    def attempt(self, client: str, wrong: bool) -> float:
        """Judge one attempt of `client` in one step (concurrent guesses cannot slip past
        the count): the seconds it must wait when it failed too often lately (refused,
        whatever its token), else 0.0, counting it when `wrong`."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(client)
            if failures is not None:
                while failures and failures[0] <= now - self.window:
                    failures.popleft()
                if len(failures) >= self.allowed:
                    return failures[0] + self.window - now
                if not failures:
                    del self._failures[client]
                    failures = None
            if not wrong:
                return 0.0
            if failures is None:
                while len(self._failures) >= self.max_clients:
                    self._failures.popitem(last=False)
                failures = self._failures[client] = deque(maxlen=self.allowed)
            failures.append(now)
            self._failures.move_to_end(client)
            return 0.0


def client_key(host: str | None) -> str:
    """A client's bucket: its address; an IPv6 one by its /64 (one subscriber's block, whose
    addresses a guesser could otherwise take turns with); SHARED_CLIENT when unknown."""
    if not host:
        return SHARED_CLIENT
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host[:255]  # not an address (a test client's name)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def authorize(settings: Settings, given: object, throttle: TokenThrottle,
              client: str | None) -> bool:
    """`token_accepted`, throttled per client (`client`: its address, None if unknown).
    Raise `TooManyAttempts` while the client is refused; a wrong (not a missing) token
    counts against it. Nothing is counted when no token is set."""
    if not settings.api_token:
        return True
    accepted = token_accepted(settings, given)
    guessed = isinstance(given, str) and bool(given.strip())
    wait = throttle.attempt(client_key(client), wrong=guessed and not accepted)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise TooManyAttempts(f"too many wrong tokens from this address; try again in "
                              f"{seconds} s", retry_after=seconds)
    return accepted


_throttle_made = threading.Lock()


def throttle_of(app: FastAPI) -> TokenThrottle:
    """The app's throttle (`qa.api.create_api` makes it and gives it to the web chat);
    one is made on first use for an app built without it."""
    with _throttle_made:
        throttle = getattr(app.state, "token_throttle", None)
        if not isinstance(throttle, TokenThrottle):
            throttle = app.state.token_throttle = TokenThrottle()
    return throttle


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the configured Bearer token; 429
    (with `Retry-After`) while its client is refused for too many wrong ones."""
    client = request.client.host if request.client is not None else None
    try:
        accepted = authorize(_settings(request),
                             given_token(request.headers.get("authorization", "")),
                             throttle_of(request.app), client)
    except TooManyAttempts as exc:
        raise HTTPException(429, str(exc),
                            headers={"Retry-After": str(exc.retry_after)}) from None
    if not accepted:
        raise HTTPException(401, "this request needs 'Authorization: Bearer <QA_API_TOKEN>'",
                            headers={"WWW-Authenticate": "Bearer"})


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def reached_beyond_loopback(server: object) -> str | None:
    """The address beyond loopback a connection reached this server at (ASGI's
    `scope["server"]`: the server's end of it), else None (loopback, a Unix socket, a test
    client's name). Whatever launched the app (`uvicorn app:app --host 0.0.0.0` skips
    `check_exposure`), a request that came this way without a token set is refused."""
    if not isinstance(server, list | tuple) or not server or not isinstance(server[0], str):
        return None
    try:
        address = ipaddress.ip_address(server[0].strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return None if address.is_loopback else str(address)


MIN_TOKEN_CHARS = 16  # beyond loopback: a token short enough to guess protects nothing


def check_exposure(host: str, settings: Settings) -> None:
    """Refuse to listen beyond loopback without a token (uploads and deletes would be open),
    or with one short enough to guess: the throttle slows one address, not a botnet."""
    if is_loopback(host):
        return
    if not settings.api_token:
        raise BadSetting(
            f"refusing to listen on {host!r} (beyond this machine) without QA_API_TOKEN; "
            "set a token or use --host 127.0.0.1")
    if len(settings.api_token.strip()) < MIN_TOKEN_CHARS:
        raise BadSetting(
            f"refusing to listen on {host!r} with a QA_API_TOKEN of under {MIN_TOKEN_CHARS} "
            "characters (easy to guess); use a longer one, e.g. the output of "
            "'python -c \"import secrets; print(secrets.token_urlsafe())\"'")
