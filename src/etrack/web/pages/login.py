"""Login and logout, a share link's entry, and one's own password."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from etrack.access.passwords import check_new_password, hash_password
from etrack.access.users import verify_totp
from etrack.errors import UsageError
from etrack.store import db
from etrack.store import users as store
from etrack.store.audit import Actor, record
from etrack.web.auth import SESSION_SHARE, current_principal, share_paths, start_session
from etrack.web.deps import Web, WebContext
from etrack.web.pages.jobs import Csrf, require_csrf
from etrack.web.pages.render import render
from etrack.web.security import client_address, is_loopback, safe_next

__all__ = ["router"]

router = APIRouter()


def reached_over_network(request: Request) -> bool:
    """Whether this connection arrived on a non-loopback address of the server
    (the socket's, never the Host header's)."""
    server = request.scope.get("server")
    return not (server and is_loopback(str(server[0])))


async def _form(
    request: Request, web: WebContext, next: str, *, status: int = 200, **flags: object
) -> HTMLResponse:
    directory = web.directory
    enabled = directory is not None and await directory.any_users()
    values = {
        "page": "login",
        "next": safe_next(next),
        "failed": False,
        "remote": reached_over_network(request),
        "login_enabled": enabled,
        **flags,
    }
    return render(request, "login.html", values, status_code=status)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, web: Web, next: str = "/") -> Response:
    return await _form(request, web, next)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    web: Web,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
    csrf: Csrf = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    require_csrf(request, csrf)
    directory = web.directory
    guard = web.login_guard
    assert directory is not None
    assert guard is not None
    address = client_address(request.scope)
    login_name = username.strip().lower()[:200]
    result = await guard.check(username, password, address, via="form")
    if result.locked:
        await directory.audit(
            "login.throttled", login_name, False, {"via": "form"}, Actor("anonymous", address)
        )
        locked = await _form(request, web, next, status=429, locked_s=result.retry_after_s)
        locked.headers["Retry-After"] = str(result.retry_after_s)
        return locked
    user = result.user
    if user is not None and user.has_totp:
        secrets = await web.in_db(lambda conn: store.get_user(conn, user.login))
        secret = secrets.totp_secret if secrets is not None else None
        if not code.strip():
            # The password was right: ask for the code, keeping the login typed.
            return await _form(request, web, next, status=401, need_code=True, username=username)
        if secret is None or not verify_totp(secret, code):
            guard.note_failure(username, address, via="form")
            await directory.audit(
                "login.failure", login_name, False, {"via": "form", "reason": "code"},
                Actor("anonymous", address),
            )  # fmt: skip
            return await _form(request, web, next, status=401, failed=True, need_code=True)
    if user is None:
        await directory.audit(
            "login.failure", login_name, False, {"via": "form"}, Actor("anonymous", address)
        )
        # Slow down guessing; the check itself is constant-time.
        await asyncio.sleep(0.5)
        return await _form(request, web, next, status=401, failed=True)
    start_session(request, user)
    await directory.touch_login(user.id)
    await directory.audit(
        "login.success", user.login, True, {"via": "form"}, Actor(user.login, address)
    )
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request, csrf: Csrf = "") -> Response:
    require_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/share/{token}")
async def open_share(request: Request, web: Web, token: str) -> Response:
    """A share link: a read-only session on one vehicle's day."""
    directory = web.directory
    assert directory is not None
    link = await directory.share(token[:200])
    address = client_address(request.scope)
    if link is None:
        await directory.audit("share.refused", None, False, {}, Actor("anonymous", address))
        raise HTTPException(404, "this link does not exist, has expired or was revoked")
    request.session.clear()
    request.session[SESSION_SHARE] = {"id": link.id}
    target = f"{link.placa} {link.rota_date.isoformat()}"
    await directory.audit(
        "share.open", target, True, {"id": link.id}, Actor(f"share:{link.id}", address)
    )
    page, _ = share_paths(link.placa, link.rota_date)
    return RedirectResponse(page, status_code=303)


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, web: Web) -> Response:
    who = current_principal()
    return render(
        request, "account.html", {"page": "account", "who": who, "error": None, "done": False}
    )


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(
    request: Request,
    web: Web,
    current: Annotated[str, Form(max_length=1000)] = "",
    new: Annotated[str, Form(max_length=1000)] = "",
    again: Annotated[str, Form(max_length=1000)] = "",
    csrf: Csrf = "",
) -> Response:
    """One's own password; every other session of the user ends."""
    require_csrf(request, csrf)
    who = current_principal()
    directory = web.directory
    guard = web.login_guard
    assert directory is not None
    assert guard is not None
    if who.user_id is None or who.via != "session":
        raise HTTPException(403, "log in with your password to change it")
    error: str | None = None
    env_login = directory.env.user
    if directory.env.configured and env_login is not None and env_login.lower() == who.name:
        raise HTTPException(
            403, "this login's password is ETRACK_WEB_PASSWORD: change it there and restart"
        )
    result = await guard.check(who.name, current, client_address(request.scope), via="form")
    if not result.ok:
        error = "current: the current password is not this one"
    elif new != again:
        error = "again: the two new passwords differ"
    else:
        try:
            check_new_password(new)
        except UsageError as exc:
            error = str(exc)
    if error is not None:
        values = {"page": "account", "who": who, "error": error, "done": False}
        return render(request, "account.html", values, status_code=400)

    hashed = await asyncio.to_thread(hash_password, new)

    def store_it(conn: db.Conn) -> store.UserSecrets | None:
        store.set_password(conn, who.name, hashed)
        record(conn, "user.passwd", who.name)
        return store.get_user(conn, who.name)

    fresh = await web.in_db(store_it)
    if fresh is not None:
        # This session goes on; the others (the old epoch) end.
        start_session(request, fresh.user)
    return render(
        request, "account.html", {"page": "account", "who": who, "error": None, "done": True}
    )
