"""The default example's report as HTML, PDF and JUnit, and what a reader's tools see in them."""

import base64
import copy
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from reports.write import write_reports
from junit_schema import check_counts, check_junit_schema
from png_pixels import png_pixels, share_of_colour
from reports import pdf
from reports.html import render_html
from reports.junit import render_junit

SECTIONS = ("1. Verdict", "2. Scope", "3. Findings", "4. Method", "5. Limitations", "6. Reproduction")
APPENDICES = ("Appendix A: findings per method", "Appendix B: every rule's reason", "Appendix C: glossary")
HOSTILE = "<script>alert(1)</script>"


def pdf_pages(path):
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(path).pages]


def test_the_pdf_has_every_section_in_order_with_numbered_pages_and_contents(default_example):
    results, out = default_example
    pages = pdf_pages(out / "report.pdf")
    starts = [next(i for i, text in enumerate(pages) if heading in text) for heading in SECTIONS]
    assert starts == sorted(starts) and starts[0] == 0
    assert all(f"page {i + 1} of {len(pages)}" in text for i, text in enumerate(pages))
    contents = pages[0].split("Contents", 1)[1]
    for heading, start in zip(SECTIONS, starts):  # the contents give each section's page
        title = heading.split(". ", 1)[1]
        assert re.search(rf"{re.escape(title)}\s*\.+\s*{start + 1}\b", contents), (title, start + 1)
    text = "\n".join(pages)
    assert results["verdict"] in pages[0] and results["scope"]["forget_digest"][:16] in text
    for label in results["metrics"]:
        assert label in pages[starts[2]] or label in text
    assert results["manifest"]["spec_digest"][:32] in "".join(pages[starts[5]:]).replace("\n", "")


def test_the_pdf_gives_the_cross_method_findings_first_and_each_method_in_an_appendix(default_example):
    results, out = default_example
    pages = pdf_pages(out / "report.pdf")
    appendices = [next(i for i, text in enumerate(pages) if i > 0 and heading in text)  # page 1: the contents
                  for heading in APPENDICES]
    reproduction = next(i for i, text in enumerate(pages) if "6. Reproduction" in text)
    assert appendices == sorted(appendices) and appendices[0] > reproduction
    main = "\n".join(pages[:appendices[0]])
    assert "privacy against utility" in main and "ROC of every target" in main
    details = "\n".join(pages[appendices[0]:appendices[1] + 1])
    for label in results["metrics"]:
        assert f"{label}: {results['method_verdicts'][label]['verdict']}" in details
    assert "the forget examples ulira scores highest" in details  # thumbnails of the digits
    assert len(pages) <= 26, len(pages)  # 27 pages before the per-method findings moved to an appendix


def test_the_report_shows_the_most_exposed_examples_pixel_for_pixel(default_example):
    results, out = default_example
    html = (out / "report.html").read_text()
    exposed = results["mia"]["methods"]["salun"]["ulira"]["most_exposed"]
    block = html.split("<h3>salun:", 1)[1].split("<h3>", 1)[0]
    figure = block.split('<figure class="exposed">', 1)[1].split("</figure>", 1)[0]
    images = re.findall(r'data:image/png;base64,([A-Za-z0-9+/=]+)', figure)
    assert len(images) == len(exposed) == 10
    for entry, image in zip(exposed, images):
        assert entry["image"]["shape"] == [1, 8, 8] and entry["image"]["dtype"] == "uint8"
        stored = np.frombuffer(base64.b64decode(entry["image"]["base64"]), np.uint8).reshape(1, 8, 8)
        assert (png_pixels(base64.b64decode(image)) == np.repeat(stored, 3, axis=0).transpose(1, 2, 0)).all()
        assert f"#{entry['index']} · {entry['label']}" in figure


def test_the_html_is_one_file_with_nothing_to_fetch(default_example):
    results, out = default_example
    html = (out / "report.html").read_text()
    for namespace in ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"):
        html = html.replace(namespace, "")
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#|data:image/png;base64,)""", html), "a resource outside the file"
    assert "http://" not in html and "https://" not in html and "<script" not in html and "@import" not in html
    assert '<meta name="viewport"' in html and "@media print" in html
    assert html.count("<svg") >= len(results["metrics"])


def test_the_junit_file_has_one_case_per_rule_and_validates(default_example):
    results, out = default_example
    root = ET.parse(out / "junit.xml").getroot()
    check_junit_schema(root)
    check_counts(root)
    failures = {(c.get("classname"), c.get("name")): c.find("failure") for c in root.iter("testcase")}
    for row in results["verdicts"]:
        failure = failures[(f"salun.{row['method']}", row["rule"])]
        expected = results["method_verdicts"][row["method"]]["expected"]  # a control's FAIL is as it must be
        assert (failure is not None) == (row["verdict"] == "FAIL" and expected != "FAIL")
        if failure is not None:
            assert row["reason"][:40] in failure.get("message")


def hostile_results(results):
    """The results with a method and the audit named like an attack on the reader."""
    hostile = copy.deepcopy(results)
    hostile["spec"]["audit"]["name"] = HOSTILE
    for section in ("metrics", "method_verdicts", "equivalence"):
        hostile[section][HOSTILE] = hostile[section].pop("salun")
    hostile["mia"]["methods"][HOSTILE] = hostile["mia"]["methods"].pop("salun")
    for row in hostile["verdicts"]:
        if row["method"] == "salun":
            row["method"] = HOSTILE
    return hostile


def test_user_strings_are_text_in_every_format(default_example):
    hostile = hostile_results(default_example[0])
    html = render_html(hostile)
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    junit = render_junit(hostile)
    assert HOSTILE not in junit
    assert HOSTILE in {case.get("classname")[len("salun."):] for case in ET.fromstring(junit).iter("testcase")}
    pages = "\n".join(pdf_pages_from(pdf.render_pdf(hostile)))
    assert HOSTILE in pages  # shown as text, never run


def pdf_pages_from(data: bytes):
    import io

    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def test_without_weasyprints_libraries_html_and_junit_are_written_and_the_pdf_says_what_to_install(
        default_example, tmp_path, monkeypatch, caplog):
    def missing():
        raise pdf.PdfUnavailable(f"PDF: WeasyPrint cannot load a system library (no libpango); {pdf.INSTALL}")

    monkeypatch.setattr(pdf, "_weasyprint", missing)
    written = write_reports(default_example[0], tmp_path, ("html", "pdf", "junit"))
    assert [p.name for p in written] == ["report.html", "junit.xml"]
    assert "apt install libpango-1.0-0" in caplog.text
    with pytest.raises(pdf.PdfUnavailable, match="brew install pango"):
        write_reports(default_example[0], tmp_path, ("pdf",), pdf_required=True)


CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
PDFTOPPM = shutil.which("pdftoppm")
FAIL_RED, PASS_GREEN = (0xF8, 0xD4, 0xD4), (0xD7, 0xF5, 0xDD)  # the grid's cells, from the report's style


def require(tool, package):
    """Skip without `tool`, except under CI (which installs `package` in .ci/run): there, fail."""
    if tool is None:
        message = f"{package} is not installed (Debian: apt-get install -y {package})"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


def keep_screenshot(path):
    """Copy a screenshot to $SALUN_SCREENSHOTS, when set, for a reader to look at."""
    folder = os.environ.get("SALUN_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


def ppm_pixels(path):
    """The pixels of a binary PPM (P6, 8 bit), as pdftoppm writes it."""
    data = path.read_bytes()
    magic, width, height, top, pixels = data.split(maxsplit=4)
    assert magic == b"P6" and top == b"255"
    return np.frombuffer(pixels[: int(width) * int(height) * 3], np.uint8).reshape(int(height), int(width), 3)


def assert_grid_visible(pixels, where):
    """The verdict grid's red FAIL and green PASS cells fill a visible part of the picture."""
    assert share_of_colour(pixels, FAIL_RED) > 0.004 and share_of_colour(pixels, PASS_GREEN) > 0.004, where


def test_chromium_shows_the_verdict_grid_on_the_first_screen_offline_without_errors(default_example, tmp_path):
    require(CHROMIUM, "chromium")
    _, out = default_example
    offline = ["--headless=new", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
               "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
               f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars"]
    url = (out / "report.html").resolve().as_uri()
    for name, size in (("desktop", "1400,900"), ("phone", "390,844")):
        shot = tmp_path / f"first-screen-{name}.png"
        run = subprocess.run([CHROMIUM, *offline, f"--window-size={size}", f"--screenshot={shot}", url],
                             capture_output=True, text=True, timeout=120)
        assert shot.exists() and shot.stat().st_size > 10_000, run.stderr[-2000:]
        assert "Uncaught" not in run.stderr and "Failed to load resource" not in run.stderr
        assert_grid_visible(png_pixels(shot.read_bytes()), f"the {name} first screen")
        keep_screenshot(shot)
    dom = subprocess.run([CHROMIUM, *offline, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<svg") >= 2 and "<img" not in dom


def test_the_pdf_shows_the_verdict_grid_on_page_one(default_example, tmp_path):
    require(PDFTOPPM, "poppler-utils")
    _, out = default_example
    subprocess.run([PDFTOPPM, "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(out / "report.pdf"),
                    str(tmp_path / "pdf-page-1")], check=True, timeout=120)
    page = tmp_path / "pdf-page-1.ppm"
    assert_grid_visible(ppm_pixels(page), "PDF page 1")
    subprocess.run([PDFTOPPM, "-r", "60", "-f", "1", "-l", "1", "-singlefile", "-png", str(out / "report.pdf"),
                    str(tmp_path / "pdf-page-1")], check=True, timeout=120)
    keep_screenshot(tmp_path / "pdf-page-1.png")
