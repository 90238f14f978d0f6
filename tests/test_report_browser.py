"""The report in a real browser: headless Chromium opens the file offline, draws every chart, and
runs nothing that came from the data.

Chromium is looked for on PATH (``/usr/bin/chromium`` on Debian); when it is missing, the
session installs it once with ``apt-get install -y chromium`` (``apt-get update`` first if
needed). The tests are skipped only when that is impossible, and the reason is printed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import test_report
from test_report import GENERATED, build, build_hostile, page

from costlens.money.filters import Filters
from costlens.report.html import render_html, write_report
from costlens.session import Session

# The fixed data set's fixtures (tests/test_report.py), shared rather than rebuilt.
fixed = test_report.fixed
fixed_template = test_report.fixed_template

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=5000",
)  # fmt: skip


def find_chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def install_chromium() -> str | None:
    """Try ``apt-get install -y chromium`` (after ``apt-get update`` if the first try fails).

    Returns None on success, else why it is impossible here.
    """
    apt = shutil.which("apt-get")
    if apt is None:
        return "Chromium is not installed and there is no apt-get to install it"
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            return "Chromium is not installed and installing it needs root (no sudo)"
        prefix = [sudo, "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, apt, "install", "-y", "-q", "chromium"]
    steps = [install, [*prefix, apt, "update", "-q"], install]
    output = ""
    for step in steps:
        print(f"browser tests: running {' '.join(step)}", file=sys.stderr)
        try:
            proc = subprocess.run(step, capture_output=True, text=True, env=env, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"`{' '.join(step)}` failed: {e}"
        output = (proc.stdout + proc.stderr)[-400:]
        if proc.returncode == 0 and step[-1] == "chromium" and find_chromium():
            return None
    return f"`apt-get install -y chromium` failed: {output.strip()}"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium binary, installed once per session if missing."""
    found = find_chromium()
    if found is None:
        reason = install_chromium()
        found = find_chromium()
        if found is None:
            message = f"headless Chromium unavailable: {reason}"
            print(f"browser tests skipped: {message}", file=sys.stderr)
            pytest.skip(message)
    return found


def run_chromium(binary: str, target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args, target.resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def dump_dom(binary: str, target: Path) -> str:
    return run_chromium(binary, target, "--dump-dom").stdout


def document_title(dom: str) -> str:
    match = re.search(r"<head>.*?<title>(.*?)</title>", dom, re.S)
    assert match, "no <title> in <head>"
    return html.unescape(match.group(1))


def chart_block(dom: str, chart_id: str) -> str:
    start = dom.index(f'id="{chart_id}"')
    following = dom.find('<div id="chart-', start + 1)
    return dom[start : following if following > 0 else len(dom)]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_opens_offline_and_draws_every_chart(chromium: str, fixed: Session, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    write_report(target, render_html(build(fixed), plotly_mode="inline", generated_at=GENERATED))
    shot = tmp_path / "report.png"
    run_chromium(chromium, target, "--window-size=1366,4000", f"--screenshot={shot}")
    assert png_size(shot) == (1366, 4000)
    assert shot.stat().st_size > 100_000  # text, tables and four charts, not a blank page
    dom = dump_dom(chromium, target)
    assert document_title(dom) == "costlens report"
    for chart_id in ("chart-cost-by-model", "chart-comparison", "chart-whatif", "chart-daily"):
        block = chart_block(dom, chart_id)
        assert 'class="main-svg"' in block, f"{chart_id} was not drawn"
    assert 'class="chart chart-missing"' not in dom
    # The bar chart drew one bar per priced model and series (3 models x input/output).
    assert len(re.findall(r'class="point"', chart_block(dom, "chart-cost-by-model"))) == 6


def test_content_security_policy_blocks_scripts_that_are_not_the_pages_own(
    chromium: str, fixed: Session, tmp_path: Path
) -> None:
    html_text = page(build(fixed))
    # Simulate a hole in the escaping: an inline script and an event handler the page did not write.
    injected = html_text.replace(
        "<main>",
        "<main><script>document.title='csp-broken'</script>"
        "<img src=x onerror=\"document.title='csp-handler'\">",
        1,
    )
    target = tmp_path / "injected.html"
    target.write_text(injected, encoding="utf-8")
    dom = dump_dom(chromium, target)
    assert document_title(dom) == "costlens report"


def test_untrusted_text_renders_as_text_and_runs_nothing(
    chromium: str, fixed: Session, tmp_path: Path
) -> None:
    run = build_hostile(fixed, tmp_path)
    target = tmp_path / "hostile.html"
    data = build(fixed, Filters(run_ids=(1, 2, 3, run)))
    write_report(target, render_html(data, plotly_mode="inline", generated_at=GENERATED))
    shot = tmp_path / "hostile.png"
    run_chromium(chromium, target, "--window-size=1366,3000", f"--screenshot={shot}")
    dom = dump_dom(chromium, target)
    # Each payload would have changed the title or added an element; none did.
    assert document_title(dom) == "costlens report"
    assert 'id="xss-tag"' not in dom
    assert "<img" not in dom and "<iframe" not in dom and "<svg onload" not in dom
    # ...and each is on the page as visible text instead.
    assert "&lt;img src=x onerror=" in dom  # the model name
    assert "&lt;script&gt;document.title='xss-user'" in dom  # the user id
    assert "&lt;svg onload=" in dom  # the stored completion
    # The charts still drew, the hostile model among their labels, as text.
    block = chart_block(dom, "chart-cost-by-model")
    assert 'class="main-svg"' in block
    assert "&lt;img src=x onerror=" in block


def test_report_prints_to_pdf(chromium: str, fixed: Session, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    write_report(target, render_html(build(fixed), plotly_mode="inline", generated_at=GENERATED))
    pdf = tmp_path / "report.pdf"
    run_chromium(chromium, target, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert 2 <= pages <= 12, pages


def test_cdn_page_without_network_says_why_charts_are_missing(
    chromium: str, fixed: Session, tmp_path: Path
) -> None:
    target = tmp_path / "cdn.html"
    write_report(target, page(build(fixed)))  # plotly_mode="cdn"
    # No DNS: the CDN cannot be reached, as on a machine without network.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
               "--dump-dom", target.resolve().as_uri()]  # fmt: skip
        dom = subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout
    assert 'class="main-svg"' not in dom
    assert dom.count('class="chart chart-missing"') == 4
    assert document_title(dom) == "costlens report"


def test_tables_sort_in_the_browser(chromium: str, fixed: Session, tmp_path: Path) -> None:
    html_text = page(build(fixed))
    # A test-only script clicks the "total" header once (ascending); the CSP is widened by its hash only.
    clicker = "document.querySelector('#table-models th[data-col=\"cost_usd\"] button').click();"
    digest = base64.b64encode(hashlib.sha256(clicker.encode()).digest()).decode()
    html_text = html_text.replace("script-src ", f"script-src &#39;sha256-{digest}&#39; ", 1)
    html_text = html_text.replace("</body>", f"<script>{clicker}</script>\n</body>", 1)
    target = tmp_path / "sort.html"
    target.write_text(html_text, encoding="utf-8")
    dom = dump_dom(chromium, target)
    table = dom[dom.index('id="table-models"') :]
    table = table[: table.index("</table>")]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    order = re.findall(r'<tr data-key="([^"]+)"', body)
    # Cheapest first; the unpriced model sorts last whichever the direction.
    assert order == ["gpt-4o-mini", "gemini-long", "gpt-4o", "mystery-model"]
    assert '<th data-col="cost_usd" class="num" aria-sort="ascending">' in table
    assert 'data-key="TOTAL"' in table[table.index("<tfoot>") :]  # the total row stays put
