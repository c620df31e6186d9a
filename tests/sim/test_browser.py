"""The report in a real browser: Debian's chromium opens report.html headless, over its DevTools
protocol (a websocket), and the page renders, every figure decodes and shows, and nothing is
logged as an error. A screenshot of the first screen is kept in out/browser/ (CI's artefact).

Skipped, with the reason, where chromium or websocket-client is missing; under CI (env CI set)
their absence fails instead: .ci/run installs chromium, ``make test`` websocket-client.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pytest

from laws.presets import load_preset
from laws.search import PlanRequest
from sim import SimConfig
from sim.report import compare
from sim.report.sections import FIGURES
from tests.components import require

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "browser"
WINDOW = (1280, 900)
# Flags that work headless as root in a container, with nothing fetched from the network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", f"--window-size={WINDOW[0]},{WINDOW[1]}"]
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def websocket():
    try:
        import websocket
    except ImportError:
        require("websocket-client", "not installed (pip install -e '.[dev]')")
    return websocket


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser-report")
    laws = load_preset("demo")
    compare(laws, PlanRequest.for_laws(laws, 2.1, levels=200),
            ["static", "planned", "greedy", "random"], SimConfig(noise=0.01, eval_every=2e17),
            out_dir=out, runs=3)
    return out / "report.html"


class DevTools:
    """One page of a headless chromium, driven over the DevTools protocol; the events it sent
    while a command was awaited are kept in ``events``."""

    def __init__(self, websocket: Any, url: str) -> None:
        self._socket = websocket.create_connection(url, timeout=TIMEOUT, suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """The result of one command; an AssertionError with the browser's message if it fails."""
        command = next(self._ids)
        self._socket.send(json.dumps({"id": command, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == command:
                assert "error" not in message, (method, message["error"])
                return message["result"]
            self.events.append(message)

    def wait_for(self, method: str) -> dict[str, Any]:
        """The next event ``method`` (events before it are kept)."""
        while True:
            message = json.loads(self._socket.recv())
            self.events.append(message)
            if message.get("method") == method:
                return message["params"]

    def close(self) -> None:
        self._socket.close()


@pytest.fixture(scope="module")
def browser(websocket, tmp_path_factory) -> Iterator[DevTools]:
    if not CHROMIUM.is_file():
        require("chromium", f"{CHROMIUM} is not installed (apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh profile every run
    process = subprocess.Popen([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}",
                                "about:blank"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port = _devtools_port(profile / "DevToolsActivePort", process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        tools = DevTools(websocket, pages[0]["webSocketDebuggerUrl"])
        yield tools
        tools.close()
    finally:
        # chromium's renderer and GPU processes share its session: end them all, none orphaned.
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_port(path: Path, process: subprocess.Popen) -> int:
    """The port chromium chose (--remote-debugging-port=0 writes it to the profile)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"chromium exited with code {process.returncode} before it listened")
        if path.is_file() and path.read_text().strip():
            return int(path.read_text().split()[0])
        time.sleep(0.1)
    pytest.fail(f"chromium did not write {path} within {TIMEOUT:.0f} s")


@pytest.fixture(scope="module")
def page(browser: DevTools, report: Path) -> dict[str, Any]:
    """The report opened in the browser: what the page says of itself once loaded, its
    screenshot, and the errors it logged."""
    for domain in ("Page", "Runtime", "Log"):
        browser.send(f"{domain}.enable")
    browser.send("Emulation.setDeviceMetricsOverride", width=WINDOW[0], height=WINDOW[1],
                 deviceScaleFactor=1, mobile=False)  # the window's own chrome takes some
    browser.send("Page.navigate", url=report.as_uri())
    browser.wait_for("Page.loadEventFired")
    state = browser.send("Runtime.evaluate", awaitPromise=True, returnByValue=True,
                         expression=_PAGE_STATE)["result"]["value"]
    shot = base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "report.png").write_bytes(shot)
    errors = [event for event in browser.events if _is_error(event)]
    return {"state": state, "screenshot": SCREENSHOTS / "report.png", "errors": errors}


# Every image decoded (img.decode() resolves only once the data is a decodable picture) and
# laid out; the page's title, headings and tables.
_PAGE_STATE = """(async () => {
  const images = [...document.images];
  const decoded = await Promise.all(images.map(i => i.decode().then(() => true, () => false)));
  return {
    title: document.title,
    headings: [...document.querySelectorAll("h1, h2")].map(h => h.textContent),
    tables: document.querySelectorAll("table").length,
    height: document.documentElement.scrollHeight,
    images: images.map((i, k) => ({alt: i.alt, decoded: decoded[k], naturalWidth: i.naturalWidth,
                                   naturalHeight: i.naturalHeight,
                                   shown: i.getBoundingClientRect().width})),
  };
})()"""


def _is_error(event: dict[str, Any]) -> bool:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.exceptionThrown":
        return True
    if method == "Runtime.consoleAPICalled":
        return params.get("type") in ("error", "assert")
    if method == "Log.entryAdded":
        return params["entry"]["level"] == "error"
    return False


def test_the_report_renders_with_its_headings_and_tables(page):
    state = page["state"]
    assert state["title"] == "Adaptive vs static training: demo"
    assert state["headings"][:2] == ["Adaptive vs static training: demo", "Savings per policy"]
    assert {"The plan", "Inputs"} <= set(state["headings"])
    assert state["tables"] >= 5
    assert state["height"] > 3 * WINDOW[1]  # laid out: text, tables and figures take room


def test_every_figure_decodes_and_shows(page):
    images = page["state"]["images"]
    assert sorted(image["alt"] for image in images) == sorted(FIGURES)
    for image in images:
        assert image["decoded"], image
        assert image["naturalWidth"] >= 500 and image["naturalHeight"] >= 250, image
        assert image["shown"] > 0, image


def test_the_page_logs_no_errors(page):
    assert page["errors"] == []


def test_the_screenshot_shows_the_first_screen(page):
    pixels = mpimg.imread(page["screenshot"])
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    ink = np.any(pixels[..., :3] < 0.5, axis=-1).mean()  # dark pixels: text and table lines
    assert 0.01 < ink < 0.5, ink
