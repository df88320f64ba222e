"""A report in the formats asked for: files to attach or download, and the
JSON rows a webhook or /api receives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, cast, get_args

from etrack.errors import UsageError
from etrack.reports.csvfile import DIALECTS, CsvDialect, report_csvs
from etrack.reports.pdf import report_pdf
from etrack.reports.table import Cell, Report
from etrack.reports.xlsx import report_xlsx

__all__ = [
    "FORMATS",
    "Attachment",
    "Format",
    "check_dialect",
    "check_formats",
    "render",
    "report_json",
]

Format = Literal["xlsx", "pdf", "csv"]
FORMATS: tuple[str, ...] = get_args(Format)

MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    media_type: str
    body: bytes = b""

    def __repr__(self) -> str:
        return f"Attachment({self.filename!r}, {len(self.body)} bytes)"


def check_formats(text: str) -> tuple[Format, ...]:
    """'xlsx,pdf' -> ('xlsx', 'pdf'), else UsageError naming the bad one."""
    found: list[Format] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        if part not in FORMATS:
            raise UsageError(f"--format: unknown format {part!r}: expected {', '.join(FORMATS)}")
        if part not in found:
            found.append(cast(Format, part))
    if not found:
        raise UsageError(f"--format: give at least one of {', '.join(FORMATS)}")
    return tuple(found)


def check_dialect(text: str) -> CsvDialect:
    if text not in DIALECTS:
        raise UsageError(f"--csv-dialect: expected one of {', '.join(DIALECTS)}, got {text!r}")
    return cast(CsvDialect, text)


def render(
    report: Report, formats: tuple[Format, ...], lang: str, dialect: CsvDialect
) -> list[Attachment]:
    files: list[Attachment] = []
    stem = report.file_stem()
    for fmt in formats:
        if fmt == "xlsx":
            files.append(Attachment(f"{stem}.xlsx", MEDIA_TYPES["xlsx"], report_xlsx(report, lang)))
        elif fmt == "pdf":
            files.append(Attachment(f"{stem}.pdf", MEDIA_TYPES["pdf"], report_pdf(report, lang)))
        else:
            files.extend(
                Attachment(name, MEDIA_TYPES["csv"], body)
                for name, body in report_csvs(report, dialect, lang)
            )
    return files


JsonCell = str | int | float | None


def _json_cell(value: Cell, report: Report) -> JsonCell:
    if isinstance(value, datetime):
        return value.astimezone(report.tz).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def report_json(report: Report) -> dict[str, object]:
    """The report as /api/reports and the webhook give it: typed columns,
    rows and totals per section; times ISO 8601 with the report's offset,
    durations in seconds."""
    return {
        "kind": report.kind,
        "title": report.title.pt,
        "account": report.account,
        "scope": report.scope,
        "date_start": report.first.isoformat(),
        "date_end": report.last.isoformat(),
        "timezone": str(report.tz),
        "generated_at": report.generated_at.isoformat(),
        "link": report.link,
        "sections": [
            {
                "name": s.name,
                "title": s.title.pt,
                "columns": [
                    {"name": c.name, "label": c.label.pt, "kind": c.kind} for c in s.columns
                ],
                "rows": [
                    {c.name: _json_cell(row.get(c.name), report) for c in s.columns}
                    for row in s.rows
                ],
                "totals": None
                if s.totals is None
                else {k: _json_cell(v, report) for k, v in s.totals.items()},
            }
            for s in report.sections
        ],
    }
