"""Every report format written from one results.json. Each format's module loads only when it is
asked for, so `salun report --format junit` never loads Jinja or WeasyPrint."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from audit.core.files import writing
from reports.pdf import PdfUnavailable

log = logging.getLogger("salun")

WRITERS = {"html": ("reports.html", "write_html", "report.html"), "junit": ("reports.junit", "write_junit", "junit.xml"),
           "markdown": ("reports.markdown", "write_markdown", "report.md"), "pdf": ("reports.pdf", "write_pdf", "report.pdf"),
           "csv": ("reports.frames", "write_csv", "")}  # csv: one file per frame, in the folder itself
FORMATS = tuple(WRITERS)


def write_reports(results: dict[str, Any], out: Path, formats: tuple[str, ...],
                  pdf_required: bool = False) -> list[Path]:
    """The reports in `formats` under `out`. The PDF comes last: when WeasyPrint cannot run, the
    others are written and the error says what to install (a warning unless `pdf_required`)."""
    page = {}
    if {"html", "pdf"} <= set(formats):  # drawn once for both
        from reports.html import render_html

        page = {"page": render_html(results)}
    written = []
    for name in sorted(formats, key=lambda f: f == "pdf"):
        module, function, filename = WRITERS[name]
        writer = getattr(importlib.import_module(module), function)
        try:
            with writing("--out", out / filename, "results.json is kept: `salun report` writes the reports again"):
                path = writer(results, out / filename, **(page if name in ("html", "pdf") else {}))
            written.extend(path if isinstance(path, list) else [path])
        except PdfUnavailable as error:
            if pdf_required:
                raise
            log.warning("%s", error)
    return written
