"""The release package, as a server gets it: unpacked in an empty directory and run with no
Swift toolchain anywhere on PATH or LD_LIBRARY_PATH. `scripts/package` builds it first."""

import glob
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BARE = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
KEY = "package_test_key_0123456789abcdefghijkl"


def package():
    found = sorted(glob.glob(str(ROOT / "out/package/kaspi-*-linux-*.tar.gz")), key=os.path.getmtime)
    if not found:
        if os.environ.get("CI"):
            pytest.fail("no package in out/package: scripts/package runs before this test")
        pytest.skip("no package in out/package: run scripts/package")
    return pathlib.Path(found[-1])


@pytest.fixture(scope="module")
def unpacked():
    directory = pathlib.Path(tempfile.mkdtemp(prefix="package-"))
    with tarfile.open(package()) as archive:
        archive.extractall(directory, filter="tar")
    (root,) = [p for p in directory.iterdir() if p.is_dir()]
    yield root
    shutil.rmtree(directory, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, headers=None, data=None, method=None):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Running:
    """A process of the package, started from an empty working directory."""

    def __init__(self, binary, arguments, ready, env=None):
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="package-run-"))
        self.log = open(self.workdir / "output.log", "w+")
        self.process = subprocess.Popen(
            [str(binary)] + arguments, cwd=self.workdir, env={**BARE, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if re.search(ready, self.output()):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"{arguments[0]} did not start: {self.output()}")

    def output(self):
        self.log.flush()
        return (self.workdir / "output.log").read_text()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def test_the_binary_needs_no_swift(unpacked):
    binary = unpacked / "kaspi"
    linked = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=BARE).stdout
    assert "swift" not in linked.lower() and "not found" not in linked, linked
    assert sorted(p.name for p in unpacked.glob("*.resources")) == [
        "KaspiKit_KaspiDemo.resources", "KaspiKit_KaspiGateway.resources", "KaspiKit_KaspiSandbox.resources"]
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=BARE)
    assert version.returncode == 0, version.stderr
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    match = re.fullmatch(r"(\d+\.\d+\.\d+) \(commit ([0-9a-f]{12})\)\n", version.stdout)
    assert match, version.stdout
    assert head.startswith(match.group(2)), f"the package is of {match.group(2)}, HEAD is {head}"
    assert unpacked.name == f"kaspi-{match.group(1)}-linux-{os.uname().machine}"


def test_a_sandbox_and_a_gateway_from_the_package(unpacked):
    binary = unpacked / "kaspi"
    sandbox_port, gateway_port, admin_port = free_port(), free_port(), free_port()
    sandbox = Running(binary, ["sandbox", "--port", str(sandbox_port)], r"Kaspi sandbox listening")
    try:
        exports = dict(re.findall(r"(KASPI_[A-Z_]+)=(\S+)", sandbox.output().split("Try it: export", 1)[1].split("\n")[0]))
        gateway = Running(
            binary,
            ["gateway", "--database", "gateway.sqlite", "--port", str(gateway_port), "--admin-port", str(admin_port)],
            r"Kaspi gateway listening", env={**exports, "KASPI_GATEWAY_API_KEYS": KEY, "KASPI_GATEWAY_ADMIN_PASSWORD": "package-admin-1"})
        try:
            api = f"http://127.0.0.1:{gateway_port}"
            headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
            status, body = get(api + "/v1/checkouts", headers, b'{"amount":2500}', "POST")
            assert status == 201, body
            order = json.loads(body)
            # The sandbox's payment page and the gateway's pages: templates from beside the binary.
            status, page = get(order["paymentUrl"])
            assert status == 200 and "<html" in page and "2" in page, page[:500]
            status, body = get(api + "/v1/payment-links", headers, b'{"amount":3000,"description":"Package test"}', "POST")
            assert status == 201, body
            status, page = get(json.loads(body)["url"])
            assert status == 200 and "Package test" in page, page[:500]
            status, page = get(f"http://127.0.0.1:{admin_port}/admin/login")
            assert status == 200 and "password" in page.lower(), page[:500]
        finally:
            gateway.stop()
    finally:
        sandbox.stop()


def test_a_link_on_path_finds_the_templates(unpacked):
    links = pathlib.Path(tempfile.mkdtemp(prefix="package-bin-"))
    try:
        (links / "kaspi").symlink_to(unpacked / "kaspi")
        port = free_port()
        sandbox = Running(links / "kaspi", ["sandbox", "--port", str(port)], r"Kaspi sandbox listening")
        try:
            status, page = get(f"http://127.0.0.1:{port}/sandbox/")
            assert status == 200 and "<html" in page, page[:500]
        finally:
            sandbox.stop()
    finally:
        shutil.rmtree(links, ignore_errors=True)


def test_the_demo_from_the_package(unpacked):
    ports = {name: free_port() for name in ("shop", "gateway", "sandbox", "admin")}
    demo = Running(
        unpacked / "kaspi",
        ["demo", "--shop-port", str(ports["shop"]), "--gateway-port", str(ports["gateway"]), "--sandbox-port", str(ports["sandbox"]),
         "--admin-port", str(ports["admin"]), "--data-dir", "demo"],
        r"127\.0\.0\.1:%d" % ports["shop"])
    try:
        status, page = get(f"http://127.0.0.1:{ports['shop']}/")
        assert status == 200 and "<html" in page, page[:500]
    finally:
        demo.stop()
