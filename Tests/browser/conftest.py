"""Browser tests: a real headless Chromium (Debian's) driven by Playwright for Python, clicking
through `kaspi demo` as a newcomer would. Nothing is downloaded at run time: Playwright is
pointed at the system Chromium."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "out" / "screenshots"


_handed_out: set = set()


def free_port() -> int:
    """A free port below Linux's ephemeral range, handed out once."""
    import random
    for _ in range(1000):
        port = random.randint(20000, 32767)
        if port in _handed_out:
            continue
        _handed_out.add(port)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium is missing: apt-get install chromium")


def start_demo(extra):
    binary = os.environ.get("KASPI_BINARY", str(ROOT / ".build" / "debug" / "kaspi"))
    data = tempfile.mkdtemp(prefix="kaspi-demo-browser-")
    ports = {"shop": free_port(), "gateway": free_port(), "sandbox": free_port(), "admin": free_port()}
    if "--profile" in extra:
        extra = extra + ["--qr-port", str(free_port())]
    process = subprocess.Popen(
        [binary, "demo", "--shop-port", str(ports["shop"]), "--gateway-port", str(ports["gateway"]),
         "--admin-port", str(ports["admin"]),
         "--sandbox-port", str(ports["sandbox"]), "--data-dir", data] + extra,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = ""
    deadline = time.time() + 60
    while time.time() < deadline and "Sandbox:" not in output:  # the banner's last line
        line = process.stdout.readline()
        if not line:
            break
        output += line
    assert "Sandbox:" in output, f"kaspi demo did not start: {output}"
    password = re.search(r"password (\S+)", output).group(1)
    urls = {
        "shop": f"http://127.0.0.1:{ports['shop']}",
        "gateway": f"http://127.0.0.1:{ports['gateway']}",
        "admin": f"http://127.0.0.1:{ports['admin']}",
        "sandbox": f"http://127.0.0.1:{ports['sandbox']}",
        "password": password,
    }
    return process, data, urls


def stop_demo(process, data):
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    assert "KaspiKit demo stopped." in rest
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def demo():
    process, data, urls = start_demo([])
    yield urls
    stop_demo(process, data)


@pytest.fixture(scope="session")
def demo_qr():
    """`kaspi demo --profile qr`: the shop on Kaspi's partner API (r3, mutual TLS)."""
    process, data, urls = start_demo(["--profile", "qr"])
    yield urls
    stop_demo(process, data)


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
