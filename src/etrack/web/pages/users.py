"""The Users page (/users, admins only): the users with their scope and
tokens, and the forms that add, disable, enable, remove a user, set a
password, change a role or scope, create and revoke API tokens: what
`etrack users|tokens` does (etrack.access.users), with the same checks and
audit rows (the request's actor is set by etrack.web.auth).

The middleware already refuses these paths to anyone but an admin; nothing
here shows a password hash, a token's hash or a TOTP secret. A new token is
shown once, on the answer to its form (rendered, not redirected): it never
sits in the session cookie or the flash line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from etrack.access.users import (
    add_user,
    create_token,
    remove_user,
    revoke_token,
    set_active,
    set_password,
    update_user,
)
from etrack.errors import UsageError
from etrack.store import db
from etrack.store import users as store
from etrack.store.users import ROLES, TokenRow, User
from etrack.web.deps import Web, WebContext
from etrack.web.pages.jobs import FLASH, Csrf, flash, require_csrf
from etrack.web.pages.render import render

__all__ = ["router"]

router = APIRouter()


@dataclass(frozen=True, slots=True)
class UserForm:
    """What the add form shows again after a refusal: never the password."""

    login: str = ""
    name: str = ""
    role: str = "viewer"
    accounts: tuple[str, ...] = ()
    fleets: str = ""


@dataclass(frozen=True, slots=True)
class UserView:
    user: User
    tokens: tuple[TokenRow, ...]


def _fleets(text: str) -> list[str]:
    return [f.strip() for f in text.split(",") if f.strip()]


def _load(conn: db.Conn) -> list[UserView]:
    tokens = store.list_tokens(conn)
    return [
        UserView(user, tuple(t for t in tokens if t.login == user.login))
        for user in store.list_users(conn)
    ]


async def _page(
    request: Request,
    web: WebContext,
    *,
    form: UserForm | None = None,
    error: str | None = None,
    message: str | None = None,
    new_token: str | None = None,
    token_login: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    values = {
        "page": "users",
        "users": await web.in_db(_load),
        "roles": ROLES,
        "known_accounts": web.account_names(),
        "form": form or UserForm(),
        "error": error,
        "message": message,
        "new_token": new_token,
        "token_login": token_login,
    }
    return render(request, "users.html", values, status_code=status)


async def _existing(web: WebContext, login: str) -> User:
    found = await web.in_db(lambda conn: store.get_user(conn, login.strip().lower()))
    if found is None:
        raise HTTPException(404, f"no user {login!r}")
    return found.user


@router.get("/users", response_class=HTMLResponse)
async def users_page(request: Request, web: Web) -> Response:
    return await _page(request, web, message=request.session.pop(FLASH, None))


@router.post("/users")
async def users_add(
    request: Request,
    web: Web,
    csrf: Csrf = "",
    login: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    accounts: Annotated[list[str] | None, Form()] = None,
    fleets: Annotated[str, Form(max_length=2000)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    again: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    require_csrf(request, csrf)
    form = UserForm(login.strip(), name.strip(), role, tuple(accounts or ()), fleets)
    known = web.account_names()
    try:
        if role != "api" and password != again:
            raise UsageError("password: the two passwords differ")
        made = await web.in_db(
            lambda conn: add_user(
                conn,
                login,
                role=role,
                password=password or None,
                accounts=list(accounts or ()),
                fleets=_fleets(fleets),
                name=name,
                known_accounts=known,
            )
        )
    except UsageError as exc:
        # The CLI's words without its "--": the page names its fields so.
        return await _page(request, web, form=form, error=str(exc).removeprefix("--"), status=400)
    flash(request, f"user {made.login} added")
    return RedirectResponse("/users", status_code=303)


async def _change(
    request: Request, web: WebContext, message: str, work: Callable[[db.Conn], object]
) -> Response:
    """Runs a change (a sync function of a connection); a refusal is the page
    again with its message (400), else back to the page with a flash line."""
    try:
        await web.in_db(work)
    except UsageError as exc:
        return await _page(request, web, error=str(exc).removeprefix("--"), status=400)
    flash(request, message)
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{login:path}/active")
async def users_active(
    request: Request,
    web: Web,
    login: str,
    csrf: Csrf = "",
    active: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_csrf(request, csrf)
    if active not in ("0", "1"):
        raise HTTPException(400, "active: expected 0 (disable) or 1 (enable)")
    user = await _existing(web, login)
    on = active == "1"
    return await _change(
        request,
        web,
        f"user {user.login} {'enabled' if on else 'disabled'}",
        lambda conn: set_active(conn, user.login, on),
    )


@router.post("/users/{login:path}/remove")
async def users_remove(
    request: Request,
    web: Web,
    login: str,
    csrf: Csrf = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_csrf(request, csrf)
    user = await _existing(web, login)
    if confirm != "1":
        # One click would lose the user's tokens and history of logins.
        raise HTTPException(400, "confirm: tick the box beside Remove to remove the user")
    return await _change(
        request, web, f"user {user.login} removed", lambda conn: remove_user(conn, user.login)
    )


@router.post("/users/{login:path}/password")
async def users_password(
    request: Request,
    web: Web,
    login: str,
    csrf: Csrf = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    again: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    require_csrf(request, csrf)
    user = await _existing(web, login)
    env = web.directory.env if web.directory is not None else None
    if env is not None and env.configured and (env.user or "").lower() == user.login:
        # That login's password is ETRACK_WEB_PASSWORD (etrack.web.auth): a
        # stored one would be ignored.
        return await _page(
            request,
            web,
            error=f"password: {user.login}'s password is ETRACK_WEB_PASSWORD: change it there",
            status=400,
        )
    if password != again:
        return await _page(request, web, error="password: the two passwords differ", status=400)
    return await _change(
        request,
        web,
        f"password of {user.login} changed",
        lambda conn: set_password(conn, user.login, password),
    )


@router.post("/users/{login:path}/update")
async def users_update(
    request: Request,
    web: Web,
    login: str,
    csrf: Csrf = "",
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    accounts: Annotated[list[str] | None, Form()] = None,
    fleets: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    require_csrf(request, csrf)
    user = await _existing(web, login)
    known = web.account_names()
    return await _change(
        request,
        web,
        f"user {user.login} changed",
        lambda conn: update_user(
            conn,
            user.login,
            role=role or None,
            accounts=list(accounts or ()),
            fleets=_fleets(fleets),
            name=name,
            known_accounts=known,
        ),
    )


@router.post("/users/{login:path}/tokens")
async def users_token_create(
    request: Request,
    web: Web,
    login: str,
    csrf: Csrf = "",
    label: Annotated[str, Form(max_length=200)] = "",
    expires: Annotated[str, Form(max_length=20)] = "90d",
) -> Response:
    require_csrf(request, csrf)
    user = await _existing(web, login)
    try:
        made = await web.in_db(
            lambda conn: create_token(conn, user.login, expires=expires, label=label)
        )
    except UsageError as exc:
        return await _page(request, web, error=str(exc).removeprefix("--"), status=400)
    # Rendered, not redirected: this answer is the only place the token appears.
    return await _page(
        request,
        web,
        message=f"token {made.id} created for {user.login}",
        new_token=made.clear,
        token_login=user.login,
    )


@router.post("/users/tokens/{token_id}/revoke")
async def users_token_revoke(
    request: Request, web: Web, token_id: int, csrf: Csrf = ""
) -> Response:
    require_csrf(request, csrf)
    if not await web.in_db(lambda conn: revoke_token(conn, token_id)):
        raise HTTPException(404, f"no live token {token_id}")
    flash(request, f"token {token_id} revoked")
    return RedirectResponse("/users", status_code=303)
