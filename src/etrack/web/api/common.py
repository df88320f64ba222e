"""What the API's resources share: media types, the error model, the path
parameters, and the ways a handler answers with bytes encoded once."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from etrack.reports.csvfile import CsvDialect, default_dialect
from etrack.web import exports, i18n
from etrack.web.reader import Encoded

__all__ = [
    "ERRORS",
    "GEOJSON",
    "JSON",
    "DayPath",
    "Dialect",
    "DialectQuery",
    "PlatePath",
    "Problem",
    "attachment",
    "body_response",
    "download_dialect",
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


class Dialect(StrEnum):
    """A CSV download's dialect (etrack.reports.csvfile)."""

    excel_br = "excel-br"
    rfc4180 = "rfc4180"


DialectQuery = Annotated[
    Dialect | None,
    Query(
        description="excel-br: ';', decimal comma, UTF-8 BOM, headers in the language (what a "
        "Brazilian Excel opens into columns); rfc4180: ',', decimal point, machine names. "
        "Default: excel-br when the request asks for pt-BR (?lang= or the language cookie), "
        "else rfc4180."
    ),
]


def download_dialect(request: Request, asked: Dialect | None) -> CsvDialect:
    """The dialect asked for, else the one of the language the request itself
    asks for (?lang=, the language cookie). A request saying nothing (a
    script) keeps rfc4180, what these downloads always gave: the server's
    UI language is no sign of what a program reads. The pages' links name
    their dialect, so a person clicking gets the one of the page's language."""
    if asked is not None:
        return "excel-br" if asked is Dialect.excel_br else "rfc4180"
    chosen = request.query_params.get("lang") or request.cookies.get(i18n.LANG_COOKIE)
    if not chosen:
        return "rfc4180"
    return default_dialect(i18n.pick_language(chosen, "en"))


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
