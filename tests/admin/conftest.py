"""A real flagsvc (uvicorn in a thread, the whole ASGI application with its static files, the
demo data) and headless Chromium at 1366x768 driving its admin; screenshots kept as artifacts."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.edge.conftest import LiveEdge, live_edge  # noqa: F401  (the real server fixture)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
# Screenshots: git-ignored (var/), kept by CI as artifacts.
ARTIFACTS = Path(
    os.environ.get("ADMIN_ARTIFACTS", Path(__file__).resolve().parents[2] / "var/artifacts/admin")
)
PASSWORD = "browser-test-password-1366"
WIDTH, HEIGHT = 1366, 768


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The admin's static files collected once, served by the edge as in production."""
    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


@dataclass
class AdminServer:
    url: str
    edge: LiveEdge


@pytest.fixture
def admin_server(
    request: pytest.FixtureRequest,
    settings: Any,
    static_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AdminServer:
    settings.STATIC_ROOT = static_root
    settings.VAR_DIR = tmp_path
    edge: LiveEdge = request.getfixturevalue("live_edge")
    monkeypatch.setenv("FLAGSVC_ADMIN_PASSWORD", PASSWORD)
    call_command("seed_demo", verbosity=0)
    return AdminServer(edge.url, edge)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium/chromedriver missing ({CHROMIUM}, {CHROMEDRIVER})")
        pytest.skip("needs Chromium and chromedriver: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="flagsvc-admin-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(WIDTH, HEIGHT)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, name: str, *, full_height: bool = False) -> Path:
    """Save a 1366 px wide screenshot (the viewport, or the whole page's height) and print its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if full_height:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WIDTH, min(max(height + 120, HEIGHT), 4000))
    driver.save_screenshot(str(path))
    if full_height:
        driver.set_window_size(WIDTH, HEIGHT)
    print(f"screenshot: {path}")
    return path
