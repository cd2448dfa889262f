"""The status page in a real browser: a real production writes OUT/status.html every
interval; headless Chromium (Debian's package, installed by `make test` as root) loads it
from disk and through `timecal serve`, and the test reads the rendered DOM (--dump-dom)
and keeps a screenshot. Without Chromium these tests skip and say so."""

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no chromium: `make test` installs "
                                   "Debian's chromium as root (apt-get install chromium)")


def browse(url, tmp_path, screenshot=None):
    profile = tmp_path / f"chromium-{time.monotonic_ns()}"
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,1400"]
    if screenshot:
        subprocess.run([*args, f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
    out = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    return out.stdout


@pytest.fixture
def production(tmp_path):
    timerc = tmp_path / "timerc"
    timerc.write_text(f"[paths]\nproduction = {tmp_path / 'prod'}\n[local]\nworkers = 2\n")
    env = {**os.environ, "TIMECAL_CONFIG": str(timerc), "XDG_STATE_HOME": str(tmp_path / "state")}
    (tmp_path / "grid.yml").write_text("index: [1, 2, 3, 4, 5]\nexit_code: [0, 6]\nseconds: 0.2\n")
    out = subprocess.run([str(BIN / "BXRun"), "--script", "sleeper", "--yaml",
                          str(tmp_path / "grid.yml"), "-o", "page", "--interval", "1",
                          "--max-retries", "1"], env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 1, out.stdout + out.stderr  # five tasks fail on purpose
    return tmp_path / "prod" / "page", env


def test_the_driver_writes_a_self_contained_page(production):
    prod, _ = production
    text = (prod / "status.html").read_text()
    assert '<meta http-equiv="refresh"' in text
    assert "src=" not in text and "<link" not in text  # nothing fetched: self-contained
    assert "5/10" in text and "exited with code 6" in text


@needs_browser
def test_the_page_in_headless_chromium(production, tmp_path):
    prod, _ = production
    shot = tmp_path / "status.png"
    dom = browse((prod / "status.html").as_uri(), tmp_path, screenshot=shot)
    headline = re.search(r'<p id="headline">(.*?)</p>', dom, re.S).group(1)
    assert "<b>5/10</b> tasks done (50.0%)" in headline
    assert re.search(r"<b>5</b> × <b>exit 6</b> step sleep exited with code 6", dom)
    assert "<svg" in dom and "tasks done and failed over time" in dom
    assert shot.is_file() and shot.stat().st_size > 10_000  # a real rendering, not a blank
    keep = os.environ.get("TIMECAL_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


@needs_browser
def test_timecal_serve_needs_its_token(production, tmp_path):
    prod, env = production
    server = subprocess.Popen([str(BIN / "timecal"), "serve", str(prod)], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/)\?token=(\S+)", line)
        base, token = url.group(1), url.group(2)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "page/", timeout=10)
        assert refused.value.code == 403
        dom = browse(f"{base}page/?token={token}", tmp_path)
        assert "<b>5/10</b> tasks done" in dom
        index = browse(f"{base}?token={token}", tmp_path)
        assert ">page</a>" in index
    finally:
        server.terminate()
        server.wait(timeout=10)
