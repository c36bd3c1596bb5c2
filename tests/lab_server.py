"""JupyterLab for the browser tests (tests/test_browser.py, tests/test_browser_review.py): a server on a free
loopback port with a token, serving a folder, with user settings for this run only, and the Chromium that
Playwright drives (``SMOLSYNTH_CHROMIUM``, default Debian's /usr/bin/chromium; the tests skip without it).

Not named ``jupyterlab_server``: that is the name of a package JupyterLab itself imports."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, Optional

import pytest

from smolsynth.servers import free_port

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("SMOLSYNTH_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAB_SETTINGS = {  # user settings for this run only: render every cell (no windowing), no news pop-up
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}
TOKEN = "smolsynth-browser-test"

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium")


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


@contextlib.contextmanager
def jupyter_lab(root: Path, home: Path, log_path: Path, *, notebook: str,
                env: Optional[Dict[str, str]] = None) -> Iterator[dict]:
    """JupyterLab serving ``root`` (settings, workspaces and runtime files under ``home``, its output in
    ``log_path``), offline on the tiny model. Yields ``{"url": <notebook's URL with the token>, "root", "log"}``;
    the server is stopped on exit."""
    for rel, settings in LAB_SETTINGS.items():
        path = home / "settings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    port, token = free_port(), TOKEN
    full_env = {**os.environ, "SMOLSYNTH_FAST": "1", "SMOLSYNTH_MODEL": "smolsynth/tiny", "SMOLSYNTH_STRICT": "1",
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
                "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
                **(env or {})}
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
         "--ServerApp.port_retries=0", "--ServerApp.allow_root=True", "--LabApp.extension_manager=readonly"],
        env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    try:
        try:
            _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc)
        except (RuntimeError, TimeoutError) as err:
            log.flush()
            raise RuntimeError(f"{err}\n{log_path.read_text()[-3000:]}") from err
        yield {"url": f"http://127.0.0.1:{port}/lab/tree/{notebook}?token={token}", "root": root, "log": log_path}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_all_cells(page, url: str) -> None:
    """Open the notebook at ``url`` in a Playwright ``page``, wait until its kernel is idle, and click Run > Run All
    Cells (returns at once: wait for what the cells show)."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # the kernel is ready when the status bar says so (the execution indicator reads "idle" before that)
    page.wait_for_function("() => /\\| Idle/.test(document.querySelector('.jp-StatusBar-Widget')"
                           "?.textContent || '')", timeout=60_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=False).first.click()
