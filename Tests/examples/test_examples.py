"""The example shops in Examples/ (Vapor 4 and Hummingbird 2), each built as its own package and
run against `kaspi sandbox` and `kaspi gateway` through one paid and refunded order: checkout,
the payer paying on the sandbox's page, the way back to the shop's result page, the events
endpoint (verified with KaspiEvents) and a refund."""

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEY = "examples_test_key_0123456789abcdefghijkl"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KASPI = ROOT / ".build" / "debug" / "kaspi"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def call(url, form=None, headers=None, body=None):
    """One request, redirects not followed: (status, Location, body)."""
    data = urllib.parse.urlencode(form).encode() if form is not None else body
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, response.headers.get("Location"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location"), error.read().decode()


class Running:
    def __init__(self, arguments, ready, env):
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="example-run-"))
        self.log = open(self.workdir / "output.log", "w+")
        self.process = subprocess.Popen(
            [str(a) for a in arguments], cwd=self.workdir, env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **env},
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if re.search(ready, self.output()):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        output = self.output()
        self.stop()
        pytest.fail(f"{arguments[0]} did not start: {output}")

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


def build(name):
    """Builds an example package (its own .build beside it) and returns its binary."""
    started = time.time()
    result = subprocess.run(["swift", "build", "--package-path", str(ROOT / "Examples" / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"{name} built in {time.time() - started:.0f} s")
    return ROOT / "Examples" / name / ".build" / "debug" / name


def wait_for(check, what, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize("name", ["HummingbirdShop", "VaporShop"])
def test_a_shop_takes_a_payment_hears_it_and_refunds(name):
    if not KASPI.exists():
        pytest.fail("no .build/debug/kaspi: `swift build --product kaspi` first")
    binary = build(name)
    sandbox_port, gateway_port, shop_port = free_port(), free_port(), free_port()
    gateway_url, shop_url = f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{shop_port}"
    sandbox = Running(
        [KASPI, "sandbox", "--port", sandbox_port, "--trade-point-id", "TP-EXAMPLE", "--api-key", "sandbox_example_key",
         "--webhook-url", f"{gateway_url}/webhooks/kaspi", "--return-url-prefix", f"{gateway_url}/pay/"],
        r"Kaspi sandbox listening", {})
    database = pathlib.Path(tempfile.mkdtemp(prefix="example-gw-")) / "gateway.sqlite"
    gateway = shop = None
    try:
        gateway = Running(
            [KASPI, "gateway", "--database", database, "--port", gateway_port, "--admin-port", "0",
             "--merchant-webhook-url", f"{shop_url}/events", "--first-poll-after", "1"],
            r"Kaspi gateway listening",
            {"KASPI_BASE_URL": f"http://127.0.0.1:{sandbox_port}", "KASPI_TRADE_POINT_ID": "TP-EXAMPLE", "KASPI_API_KEY": "sandbox_example_key",
             "KASPI_GATEWAY_API_KEYS": KEY, "KASPI_GATEWAY_EVENTS_SECRET": SECRET,
             "KASPI_GATEWAY_MOBILE_RETURN_URLS": f"{shop_url}/", "KASPI_GATEWAY_ADMIN_PASSWORD": "examples-admin-1"})
        shop = Running(
            [binary], r"Server started",
            {"KASPI_GATEWAY_URL": gateway_url, "KASPI_GATEWAY_API_KEY": KEY, "KASPI_GATEWAY_EVENTS_SECRET": SECRET,
             "SHOP_PORT": str(shop_port), "SHOP_URL": shop_url})

        status, _, page = call(shop_url + "/")
        assert status == 200 and "Pay with Kaspi" in page, page
        # Checkout: the shop sends the payer to Kaspi's (the sandbox's) payment page.
        status, payment_url, body = call(shop_url + "/buy", {"item": "lamp"})
        assert status == 303 and payment_url, body
        status, _, page = call(payment_url)
        assert status == 200 and "5" in page, page[:300]
        status, back, _ = call(payment_url, {"action": "pay"})
        assert status == 303 and back, "the sandbox sends the payer back to the gateway"
        # The gateway sends the payer back to the shop's result page, which asks the gateway.
        hops = 0
        while back.startswith(gateway_url) and hops < 5:
            status, back, body = call(back)
            assert status in (302, 303) and back, body[:300]
            hops += 1
        assert back.startswith(shop_url + "/result?"), back
        reference = urllib.parse.parse_qs(urllib.parse.urlparse(back).query)["orderId"][0]
        wait_for(lambda: "Thank you!" in call(back)[2], "the result page to say paid")

        # Paid is what the shop's events endpoint heard from the gateway, verified.
        def sale():
            return json.loads(call(f"{shop_url}/orders/{reference}")[2])
        wait_for(lambda: sale().get("paid"), "order.paid at the shop's events endpoint")
        assert sale()["amount"] == 5900

        # A refund through the gateway; refund.succeeded comes back as an event.
        status, location, body = call(shop_url + "/refund", {"reference": reference})
        assert status == 303 and location == f"/orders/{reference}", body
        wait_for(lambda: sale().get("refunded") == 5900, "refund.succeeded at the shop's events endpoint")

        # The shop refuses what it cannot verify, and what it cannot sell.
        status, _, _ = call(shop_url + "/events", headers={"webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time())),
                                                            "webhook-signature": "v1,Zm9yZ2Vk", "Content-Type": "application/json"},
                         body=json.dumps({"type": "order.paid", "data": {"id": "ord_x"}}).encode())
        assert status == 400
        assert call(shop_url + "/buy", {"item": "nothing"})[0] == 400
        assert call(shop_url + "/refund", {"reference": reference})[0] == 409, "refunded already"
    finally:
        for process in (shop, gateway, sandbox):
            if process:
                process.stop()
        shutil.rmtree(database.parent, ignore_errors=True)
