"""The PDF report: the HTML report laid out for print by WeasyPrint (page numbers, contents
with page references, figures kept whole)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from audit.core.errors import SalunInputError
from audit.core.files import write_bytes_atomic

INSTALL = (
    "install WeasyPrint's system libraries (Pango, HarfBuzz, fontconfig): "
    "Debian/Ubuntu `apt install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libfontconfig1`, "
    "Fedora `dnf install pango`, macOS `brew install pango`; "
    "see https://doc.courtbouillon.org/weasyprint/stable/first_steps.html"
)


class PdfUnavailable(SalunInputError):
    """WeasyPrint or its system libraries cannot be loaded; the message says what to install."""


def _weasyprint():
    for name in ("weasyprint", "fontTools"):  # rendering steps and font notes, from import on
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import weasyprint
    except ImportError as error:
        raise PdfUnavailable(f"PDF: WeasyPrint is not installed ({error}); `pip install weasyprint`, then {INSTALL}") from None
    except OSError as error:  # the Python package loads the C libraries at import
        raise PdfUnavailable(f"PDF: WeasyPrint cannot load a system library ({error}); {INSTALL}") from None
    return weasyprint


def render_pdf(results: dict[str, Any], page: str | None = None) -> bytes:
    """`page`: the HTML report already rendered from `results`, if there is one."""
    weasyprint = _weasyprint()
    if page is None:
        from reports.html import render_html  # Jinja loads only when the page is drawn here

        page = render_html(results)
    return weasyprint.HTML(string=page).write_pdf()


def write_pdf(results: dict[str, Any], path: Path, page: str | None = None) -> Path:
    write_bytes_atomic(path, render_pdf(results, page))
    return path
