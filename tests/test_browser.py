"""A real browser: JupyterLab in headless Chromium opens the solution notebook 00, runs all cells, and shows the
exercise feedback, rendered, with no error. Saves a screenshot to test-artifacts/browser-00_setup.png.

Needs Debian's chromium (``apt-get install -y chromium``) and Python playwright; skips cleanly without them.
Run it alone with ``pytest tests/test_browser.py`` (CI: ``make browser-test``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("SMOLSYNTH_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts"
NOTEBOOK = REPO / "notebooks" / "solutions" / "00_setup.ipynb"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAB_SETTINGS = {  # user settings for this run only: render every cell (no windowing), no news pop-up
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}
RUN_TIMEOUT_S = 240

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"jupyter lab did not answer {url} within {timeout} s")


@pytest.fixture()
def lab(tmp_path: Path, engine_home: Path):
    """JupyterLab on a free localhost port, serving a copy of notebook 00 (the repository stays untouched)."""
    root, home = tmp_path / "work", tmp_path / "jupyter"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    for rel, settings in LAB_SETTINGS.items():
        path = home / "settings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    port, token = _free_port(), "smolsynth-browser-test"
    env = {**os.environ, "SMOLSYNTH_FAST": "1", "SMOLSYNTH_MODEL": "smolsynth/tiny", "SMOLSYNTH_STRICT": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
         "--ServerApp.port_retries=0", "--ServerApp.allow_root=True", "--LabApp.extension_manager=readonly"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    try:
        try:
            _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc)
        except (RuntimeError, TimeoutError) as err:
            log.flush()
            raise RuntimeError(f"{err}\n{(tmp_path / 'lab.log').read_text()[-3000:]}") from err
        yield {"url": f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}", "root": root,
               "log": tmp_path / "lab.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_notebook_00_runs_in_jupyterlab_and_shows_feedback(lab: dict) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "browser-00_setup.png"
    started = time.perf_counter()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(lab["url"])
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            # the kernel is ready when the status bar says so (the execution indicator reads "idle" before that)
            page.wait_for_function("() => /\\| Idle/.test(document.querySelector('.jp-StatusBar-Widget')"
                                   "?.textContent || '')", timeout=60_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=False).first.click()
            code_cells = page.locator(".jp-Notebook .jp-CodeCell").count()
            # done when every code cell shows an execution number, or when an error stopped the run
            try:
                page.wait_for_function(
                    """n => {
                        const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
                        const failed = document.querySelector(".jp-OutputArea-output[data-mime-type="
                                                              + "'application/vnd.jupyter.stderr']") !== null;
                        const done = prompts.length === n && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
                        return done || (failed && !prompts.some(p => p.textContent.includes('*')));
                    }""", arg=code_cells, timeout=RUN_TIMEOUT_S * 1000)
            except sync_api.TimeoutError:
                page.screenshot(path=str(ARTIFACTS / "browser-00_setup-timeout.png"))
                raise
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
            feedback = page.locator(".jp-OutputArea-output .smolsynth-feedback")
            statuses = [feedback.nth(i).get_attribute("data-status") for i in range(feedback.count())]
            target = feedback.last if statuses else (errors.first if tracebacks else None)
            if target is not None:
                target.scroll_into_view_if_needed()
                page.wait_for_timeout(300)
            page.screenshot(path=str(screenshot))
            visible = bool(statuses) and feedback.last.is_visible()
        finally:
            browser.close()
    seconds = time.perf_counter() - started
    print(f"browser check: {seconds:.1f} s (screenshot: {screenshot})")
    assert not tracebacks, tracebacks
    assert statuses == ["correct", "correct"], statuses
    assert visible and screenshot.stat().st_size > 10_000
