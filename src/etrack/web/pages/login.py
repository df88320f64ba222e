"""Login and logout (when ETRACK_WEB_USER/ETRACK_WEB_PASSWORD are set)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from etrack.web.deps import Web
from etrack.web.pages.render import render
from etrack.web.security import (
    SESSION_USER,
    LoginGuard,
    auth_config,
    client_address,
    is_loopback,
    safe_next,
    valid_csrf,
)

__all__ = ["router"]

router = APIRouter()


def reached_over_network(request: Request) -> bool:
    """Whether this connection arrived on a non-loopback address of the server
    (the socket's, never the Host header's)."""
    server = request.scope.get("server")
    return not (server and is_loopback(str(server[0])))


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> Response:
    values = {
        "page": "login",
        "next": safe_next(next),
        "failed": False,
        "remote": reached_over_network(request),
    }
    return render(request, "login.html", values)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    web: Web,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    config = auth_config(web.settings)
    if not valid_csrf(request, csrf):
        raise HTTPException(403, "the form expired: reload the page and try again")
    guard = web.login_guard or LoginGuard(config)
    result = await guard.check(username, password, client_address(request.scope), via="form")
    if result.locked:
        locked = render(
            request,
            "login.html",
            {
                "page": "login",
                "next": safe_next(next),
                "failed": False,
                "locked_s": result.retry_after_s,
                "remote": reached_over_network(request),
            },
            status_code=429,
        )
        locked.headers["Retry-After"] = str(result.retry_after_s)
        return locked
    if not result.ok:
        # Slow down guessing; the check itself is constant-time.
        await asyncio.sleep(0.5)
        return render(
            request,
            "login.html",
            {
                "page": "login",
                "next": safe_next(next),
                "failed": True,
                "remote": reached_over_network(request),
            },
            status_code=401,
        )
    request.session.clear()
    request.session[SESSION_USER] = config.user
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
async def logout(
    request: Request, csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = ""
) -> Response:
    if not valid_csrf(request, csrf):
        raise HTTPException(403, "the form expired: reload the page and try again")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
