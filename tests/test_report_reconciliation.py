"""The report's "Reconciliation" section: the newest stored `costlens reconcile` over the same selection,
with its inputs (file names and sha256), totals and the cells that differ with their likely cause."""

from __future__ import annotations

import json

from test_reconcile import MINI, mini_costs, openai_page, three_days, usage_result, write_json  # noqa: F401


def test_the_report_carries_the_latest_reconciliation(invoke, three_days, tmp_path):  # noqa: F811
    three_days(skip_days=(1,))  # costlens logged nothing on Aug 2; the provider billed 2 requests
    usage = write_json(tmp_path / "usage.json", openai_page({d: [usage_result(MINI, 2)] for d in range(3)}))
    costs = write_json(tmp_path / "costs.json", openai_page({d: mini_costs() for d in range(3)}))
    before = json.loads(invoke("report", "--format", "json", "--out", "-").stdout)
    assert before["reconciliation"] is None
    assert 'id="reconciliation"' not in invoke("report", "--out", "-").stdout
    assert invoke("reconcile", usage, costs).exit_code == 5
    data = json.loads(invoke("report", "--format", "json", "--out", "-").stdout)["reconciliation"]
    assert data["status"] == "differences" and data["kinds"] == ["openai-usage", "openai-costs"]
    assert [f["file"] for f in data["inputs"]] == ["usage.json", "costs.json"]  # names, not paths
    page = invoke("report", "--out", "-").stdout
    section = page[
        page.index('<section id="reconciliation"') : page.index(
            "</section>", page.index('<section id="reconciliation"')
        )
    ]
    assert "usage.json (openai-usage, sha256" in section and str(tmp_path) not in section
    assert "traffic costlens never saw" in section
    assert section.count("<tr>") >= 4  # totals and the cells that differ
    assert '<a href="#reconciliation">' in page
    # Another selection has no reconciliation of its own: the section is not shown for it.
    other = json.loads(invoke("report", "--format", "json", "--out", "-", "--tag", "team=other").stdout)
    assert other["reconciliation"] is None
