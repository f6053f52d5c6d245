"""The edge of the API against hostile clients: security headers on every answer, a deadline for request bodies,
and the API key checked before the body is read.

Middleware order (outermost first, see :func:`stadtpuls.api.main.create_app`): metrics, client address from
trusted proxies (uvicorn's ``ProxyHeadersMiddleware``), trusted hosts (Starlette's ``TrustedHostMiddleware``),
:class:`SecurityHeadersMiddleware`, CORS, body size limit, :class:`BodyTimeoutMiddleware`,
:class:`KeyFirstMiddleware`, the routes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import Role
from .middleware import Refusal, call_refusing
from .problems import Problem, problem_response

__all__ = [
    "API_HEADERS",
    "LOOPBACK_HOSTS",
    "BodyTimeoutMiddleware",
    "KeyFirstMiddleware",
    "PublicHostMiddleware",
    "SecurityHeadersMiddleware",
]

#: always answered (the container's healthcheck, an operator on the host): a client can gain nothing by naming them
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

#: on every answer; an answer that sets its own Content-Security-Policy or Cache-Control (the pages, the
#: live streams) keeps it, and an HTML page without a policy of its own (the API console) gets only
#: ``frame-ancestors 'none'``
API_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_ALWAYS = ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy")


class SecurityHeadersMiddleware:
    """``nosniff``, ``frame-ancestors 'none'`` and ``Cache-Control: no-store`` (a new key is never cached)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                own_csp = headers.get("content-security-policy")
                for name, value in API_HEADERS.items():
                    if name in _ALWAYS or name not in headers:
                        headers[name] = value
                if own_csp is None and headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = "frame-ancestors 'none'"  # a page without a policy (/docs)
                csp = headers["Content-Security-Policy"]
                if "frame-ancestors" not in csp:  # a page's own policy: no framing either
                    headers["Content-Security-Policy"] = csp.rstrip("; ") + "; frame-ancestors 'none'"
            await send(message)

        await self.app(scope, receive, with_headers)


class PublicHostMiddleware:
    """Starlette's ``TrustedHostMiddleware`` (400, the Host never echoed) for ``hosts`` and the loopback names, on
    every port but the internal metrics port (``internal_port``), which Prometheus reaches by a service name."""

    def __init__(self, app: ASGIApp, hosts: list[str], internal_port: int = 0) -> None:
        self.app = app
        self.internal_port = internal_port
        self.checked = TrustedHostMiddleware(app, allowed_hosts=[*hosts, *LOOPBACK_HOSTS], www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        if self.internal_port and server and server[1] == self.internal_port:
            await self.app(scope, receive, send)
        else:
            await self.checked(scope, receive, send)


class BodyTimeoutMiddleware:
    """A request body that does not arrive within ``timeout`` seconds (in all) is answered 408."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # after the body only the disconnect is left to wait for, as long as it takes
                return await receive()
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.001))
            except TimeoutError:
                response = problem_response(
                    408, f"request body not received within {self.timeout:g} s", instance=scope.get("path", "")
                )
                response.headers["Connection"] = "close"
                raise Refusal(response) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await call_refusing(self.app, scope, timed_receive, send)


def needed_role(dependant: Dependant) -> Role | None:
    """The role a route's dependencies require (admin over operator), or None for a public route."""
    from .deps import require_admin, require_operator

    calls: set[Any] = set()
    stack = [dependant]
    while stack:
        d = stack.pop()
        calls.add(d.call)
        stack.extend(d.dependencies)
    if require_admin in calls:
        return "admin"
    if require_operator in calls:
        return "operator"
    return None


class KeyFirstMiddleware:
    """Operator and admin routes: the key is checked (401, 403, 429) when the route first reads the request body,
    before the body is parsed or validated, so a caller without a valid key learns nothing from validation errors
    (401 before 422). Routes without a body check the key in their dependency as before. The principal is left
    in ``request.state.principal`` for the route's dependency."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._roles: dict[int, Role | None] = {}

    def _role(self, route: Any) -> Role | None:
        if not isinstance(route, APIRoute):
            return None
        key = id(route)
        if key not in self._roles:
            self._roles[key] = needed_role(route.dependant)
        return self._roles[key]

    async def _refusal(self, scope: Scope, role: Role) -> Response | None:
        from .deps import authenticate, client_address

        key = dict(scope["headers"]).get(b"x-api-key")
        try:
            principal = await authenticate(
                scope["app"].state.ctx, client_address(scope), key.decode("latin-1") if key else None, role
            )
        except Problem as p:
            return problem_response(
                p.status_code, p.detail, instance=scope.get("path", ""), headers=dict(p.headers or {})
            )
        except psycopg.OperationalError:  # also the pool's timeout: as the routes answer it
            return problem_response(
                503,
                "the database is not reachable, try again shortly",
                instance=scope.get("path", ""),
                headers={"Retry-After": "5"},
            )
        scope.setdefault("state", {})["principal"] = principal
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        checked = False

        async def keyed_receive() -> Message:
            nonlocal checked
            if not checked:
                checked = True
                role = self._role(scope.get("route"))  # routing is done when a route reads its body
                if role is not None:
                    refused = await self._refusal(scope, role)
                    if refused is not None:
                        raise Refusal(refused)
            return await receive()

        await call_refusing(self.app, scope, keyed_receive, send)
