"""What the API's resources share: media types, the error model, the path
parameters, and the ways a handler answers with bytes encoded once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from etrack.web import exports
from etrack.web.reader import Encoded

__all__ = [
    "ERRORS",
    "GEOJSON",
    "JSON",
    "DayPath",
    "PlatePath",
    "Problem",
    "attachment",
    "body_response",
    "encoded",
]

JSON = "application/json"
GEOJSON = "application/geo+json"


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Bad range or combination of parameters"},
    404: {"model": Problem, "description": "No such vehicle or no data"},
    422: {"model": Problem, "description": "A plate, date or parameter is malformed"},
}

PlatePath = Annotated[
    str, Path(description="Plate: ABC1234, ABC-1234 or Mercosul ABC1D23", examples=["ABC1D23"])
]
DayPath = Annotated[str, Path(description="Local day: YYYY-MM-DD or DD-MM-YYYY")]


def encoded(value: Any, media_type: str = JSON, status_code: int = 200) -> Response:
    return Response(exports.dumps(value), status_code=status_code, media_type=media_type)


def body_response(request: Request, body: Encoded, media_type: str) -> Response:
    """The cached body, gzipped when the client takes it (browsers do): the
    compression was paid once for every client."""
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            body.gzip,
            media_type=media_type,
            headers={"content-encoding": "gzip", "vary": "accept-encoding"},
        )
    return Response(body.raw, media_type=media_type, headers={"vary": "accept-encoding"})


def attachment(body: bytes, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
