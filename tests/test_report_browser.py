"""The HTML report in a real browser (headless Chromium): every image loads, no request leaves the file, nothing runs
past the right edge of a 1280-pixel window, and the title names the study, not a folder path.

A copy of the report gets a probe in its <head>: a Content-Security-Policy that allows only inline data (so any
request leaving the file is blocked and reported as a violation) and a script that, after load, writes what it
found as JSON into the DOM, which `chromium --dump-dom` prints. Skipped where no Chromium is installed
(`apt-get install chromium`; .ci/run installs it when it runs as root).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sim.cli import main

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW_PX = 1280

PROBE = """<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<script>
const blocked = [];
document.addEventListener('securitypolicyviolation', e => blocked.push(e.violatedDirective + ' ' + e.blockedURI));
function scrolls(el) {  // an ancestor that scrolls sideways and itself fits the window
  for (let p = el.parentElement; p; p = p.parentElement) {
    const s = getComputedStyle(p).overflowX;
    if ((s === 'auto' || s === 'scroll') && p.getBoundingClientRect().right <= window.innerWidth + 1) return true;
  }
  return false;
}
window.addEventListener('load', () => setTimeout(() => {
  const images = [...document.images];
  const cut = [...document.querySelectorAll('table, figure, img, p, h1, h2, h3, pre')]
    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 && !scrolls(el))
    .map(el => el.tagName + ':' + (el.textContent || el.alt || '').trim().slice(0, 40));
  const out = {title: document.title, images: images.length, viewport: window.innerWidth,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    page_width: document.documentElement.scrollWidth, cut: cut, blocked: blocked};
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 200));
</script>"""


def _browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def _probe(report: Path, tmp_path: Path, extra_html: str = "") -> dict:
    """Load a probed copy of `report` in headless Chromium; what the probe found."""
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    html = report.read_text(encoding="utf-8")
    head = html.index("<head>") + len("<head>")
    charset = html.find(">", head) + 1 if html.startswith("<meta charset", head) else head
    probed = tmp_path / f"probed_{report.name}"
    body_end = html.rindex("</body>")
    probed.write_text(html[:charset] + PROBE + html[charset:body_end] + extra_html + html[body_end:],
                      encoding="utf-8")
    cmd = [browser, "--headless", "--disable-gpu", "--no-first-run", "--hide-scrollbars", "--mute-audio",
           f"--window-size={WINDOW_PX},900", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the probe did not report (exit {proc.returncode}): {proc.stderr[-800:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))


def _check(found: dict, min_images: int) -> None:
    assert found["viewport"] == WINDOW_PX
    assert found["images"] >= min_images and found["broken"] == [], found
    assert found["blocked"] == [], found
    assert found["cut"] == [] and found["page_width"] <= WINDOW_PX, found


def test_study_report_in_a_browser(tiny_study_dir, tmp_path):
    found = _probe(tiny_study_dir / "report.html", tmp_path)
    _check(found, min_images=7)  # 5 study plots + a roofline per policy
    assert found["title"].startswith("dsqsim study") and "tiny-mt" in found["title"] and "edge-npu" in found["title"]
    assert "/" not in found["title"]  # not the folder path


def test_sweep_report_in_a_browser(tmp_path, capsys):
    out = tmp_path / "s.parquet"
    assert main(["sweep", "--workload", "tiny-mt", "--policies", "fp32,dsq", "--dram-bw-scale", "0.5,1,2",
                 "--fidelity", "roofline", "--out", str(out), "--no-progress"]) == 0
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    found = _probe(tmp_path / "r.html", tmp_path)
    _check(found, min_images=2)
    assert "s.parquet" in found["title"] and "/" not in found["title"]


def test_the_probe_sees_a_request_leaving_the_file_and_a_broken_image(tiny_study_dir, tmp_path):
    """The checks can fail: an external image is blocked and reported, a broken one is found, a wide one is cut."""
    found = _probe(tiny_study_dir / "report.html", tmp_path,
                   extra_html="<img alt=outside src='https://example.invalid/x.png'>"
                              "<img alt=broken src='data:image/png;base64,AAAA'>"
                              "<div style='width:3000px'>wide</div>")
    assert any("example.invalid" in b for b in found["blocked"])
    assert set(found["broken"]) >= {"outside", "broken"}
    assert found["page_width"] > WINDOW_PX
