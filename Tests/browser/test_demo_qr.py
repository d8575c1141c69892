"""`kaspi demo --profile qr` in a browser: the shop on Kaspi's partner API (the Kaspi QR API)."""
import re

from conftest import shot


def test_link_payment_hands_off_and_comes_back(demo_qr, page, browser):
    page.goto(demo_qr["shop"])
    shot(page, "qr-01-shop")
    page.click("#buy-tea")
    page.wait_for_url(re.compile(r".*/wait/ord_.*"))
    shot(page, "qr-02-waiting-for-kaspi")
    # The payer's phone: the link opens Kaspi (here, the sandbox's page, in a page of its own:
    # closing a popup tab can hang headless Chromium).
    kaspi = browser.new_page()
    kaspi.set_default_timeout(20_000)
    kaspi.goto(page.get_attribute("#open-kaspi", "href"))
    assert "1 200" in kaspi.inner_text(".amount").replace("\u202f", " ").replace("\xa0", " ")
    shot(kaspi, "qr-03-kaspi-page")
    kaspi.click("button[value=scan]")
    kaspi.click("button[value=confirm]")
    assert "Paid" in kaspi.inner_text(".status")
    kaspi.close()
    # The shop's page asks the gateway by itself and moves on once Kaspi says Processed.
    page.wait_for_url(re.compile(r".*/result\?orderId=.*"), timeout=30_000)
    assert "Thank you!" in page.inner_text("h1")
    shot(page, "qr-04-shop-result-paid")


def test_remote_invoice_names_the_payer_and_is_checked_on_request(demo_qr, page, browser):
    page.goto(demo_qr["shop"])
    page.fill("#phone-lamp", "87071234567")
    page.click("#invoice-lamp")
    assert "Send the invoice?" in page.inner_text("h1")
    assert "4567" in page.content()
    shot(page, "qr-05-invoice-confirm-payer")
    page.click("#send-invoice")
    page.wait_for_url(re.compile(r".*/invoice/ord_.*"))
    shot(page, "qr-06-invoice-sent")
    app = browser.new_page()
    app.set_default_timeout(20_000)
    app.goto(page.get_attribute("#payer-app", "href"))
    assert "87071234567" in app.content()
    app.click("button[value=confirm]")
    app.close()
    page.click("#check-payment")
    page.wait_for_url(re.compile(r".*/result\?orderId=.*"))
    assert "Thank you!" in page.inner_text("h1")
