import copy
import json
from markupsafe import escape

import pytest

from audit.pipeline import run_audit
from audit.results.document import dumps
from audit.config.spec import load_spec
from helpers import small_config, write_toml
from reports.html import render_html
from reports.markdown import render_markdown


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    config = small_config(audit={"store": str(folder / "store")})
    return run_audit(load_spec(write_toml(folder / "a.toml", config)), folder / "out", show_progress=False)


def test_report_shows_the_verdict_scope_and_every_method_from_results_alone(results):
    html = render_html(json.loads(dumps(results)))
    assert results["verdict"] in html and str(escape(results["verdict_reason"])) in html
    for method, row in results["metrics"].items():
        assert f"<td>{method}</td>" in html
        assert f"{100 * row['UA']['mean']:.2f}" in html
    assert results["manifest"]["spec_digest"] in html


def test_user_strings_are_escaped(results):
    hostile = copy.deepcopy(results)
    hostile["metrics"]["<script>alert(1)</script>"] = hostile["metrics"].pop("finetune")
    hostile["spec"]["audit"]["name"] = "<img src=x onerror=alert(1)>"
    html = render_html(hostile)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_salun_report_re_renders_from_results_json(cli, results, tmp_path):
    (tmp_path / "results.json").write_text(dumps(results))
    code, out, _ = cli("report", str(tmp_path / "results.json"), "--out", str(tmp_path / "again"))
    assert code == 0
    assert (tmp_path / "again" / "report.html").read_text() == render_html(results)
    code, out, _ = cli("report", str(tmp_path / "results.json"), "--format", "pdf,junit", "--out", str(tmp_path / "pj"))
    assert code == 0 and sorted(p.name for p in (tmp_path / "pj").iterdir()) == ["junit.xml", "report.pdf"]
    assert (tmp_path / "pj" / "report.pdf").read_bytes()[:5] == b"%PDF-"
    code, _, err = cli("report", str(tmp_path / "results.json"), "--format", "html,docx")
    assert code == 2 and "unknown format(s) ['docx']" in err
    older = {k: v for k, v in json.loads(dumps(results)).items() if k != "metrics"}
    (tmp_path / "older.json").write_text(json.dumps(older))
    code, _, err = cli("report", str(tmp_path / "older.json"), "--out", str(tmp_path / "older"))
    assert code == 2 and "older.json: results.json lacks its 'metrics' section" in err
    older = json.loads(dumps(results))
    del older["scope"]["forget_digest"]
    (tmp_path / "older.json").write_text(json.dumps(older))
    code, _, err = cli("report", str(tmp_path / "older.json"), "--out", str(tmp_path / "older"))
    assert code == 2 and "report.html: results.json lacks what the report shows" in err and "forget_digest" in err
    (tmp_path / "bad.json").write_text("{}")
    code, _, err = cli("report", str(tmp_path / "bad.json"))
    assert code == 2 and "expected schema salun.results/1" in err


def test_markdown_table_has_a_row_per_method_with_its_numbers(cli, results, tmp_path):
    (tmp_path / "results.json").write_text(dumps(results))
    code, _, _ = cli("report", str(tmp_path / "results.json"), "--format", "markdown,html", "--out", str(tmp_path))
    assert code == 0 and (tmp_path / "report.html").exists()
    table = (tmp_path / "report.md").read_text()
    assert table == render_markdown(results)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    for method, row in results["metrics"].items():
        cells = [cell.strip() for cell in rows[method].split("|")[2:-1]]
        assert cells[0] == f"{100 * row['UA']['mean']:.2f} ± {100 * row['UA']['std']:.2f}"
        assert cells[4] == f"{100 * row['avg_gap']['mean']:.2f} ± {100 * row['avg_gap']['std']:.2f}"
    assert f"over {results['scope']['models_per_population']} seeds" in table
