"""The API's documentation at FastAPI's conventional paths: /openapi.json
(the same document as /api/openapi.json) and /docs, a page listing every
operation, drawn on the server from that document.

Not Swagger UI: it loads its code from a CDN, which the page policy (CSP
script-src 'self') and the no-CDN rule forbid. Both paths are open like
/api/openapi.json (etrack.web.security.OPEN_PATHS): they hold no personal data.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from etrack.web.pages.render import render

__all__ = ["operations", "router"]

router = APIRouter()

METHODS = ("get", "post", "put", "patch", "delete")


@router.get("/openapi.json")
async def openapi_document(request: Request) -> Response:
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
async def api_docs(request: Request) -> Response:
    document = request.app.openapi()
    return render(
        request,
        "api_docs.html",
        {
            "page": "docs",
            "title": document.get("info", {}).get("title", "etrack"),
            "api_version": document.get("info", {}).get("version", ""),
            "summary": document.get("info", {}).get("summary", ""),
            "operations": operations(document),
        },
    )


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each path and method of an OpenAPI document, in the document's order."""
    found = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "parameters": [
                        {
                            "name": p.get("name", ""),
                            "where": p.get("in", ""),
                            "required": bool(p.get("required")),
                            "description": p.get("description", ""),
                        }
                        for p in operation.get("parameters", [])
                    ],
                }
            )
    return found
