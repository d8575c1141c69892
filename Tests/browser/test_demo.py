import re

from conftest import shot


def test_purchase_by_redirect(demo, page):
    page.goto(demo["shop"])
    shot(page, "01-shop")
    page.click("#buy-tea")
    page.wait_for_url(re.compile(r".*/pay/[0-9a-f]+$"))
    assert page.inner_text(".amount") == "1\xa0200\xa0₸"
    shot(page, "02-sandbox-payment-page")
    page.click("button[value=pay]")
    page.wait_for_url(re.compile(r".*/result\?status=success.*"))
    assert "Thank you!" in page.inner_text("h1")
    shot(page, "03-shop-result-paid")


def test_declined_payment(demo, page):
    page.goto(demo["shop"])
    page.click("#buy-lamp")
    page.click("button[value=decline]")
    page.wait_for_url(re.compile(r".*/result\?status=failed.*"))
    assert "Payment not completed" in page.inner_text("h1")


def test_qr_payment_updates_itself(demo, page, browser):
    page.goto(demo["shop"])
    page.click("#qr-chair")
    page.wait_for_url(re.compile(r".*/qr/ord_.*"))
    assert page.is_visible("img.qr")
    shot(page, "04-shop-qr-waiting")
    # The payer scans and pays: in the sandbox, open the pending order's page and press Pay.
    payer = browser.new_page()
    payer.goto(demo["sandbox"] + "/sandbox/")
    payer.click("text=kk_")  # the newest order is listed first
    payer.click("button[value=pay]")
    payer.close()
    page.wait_for_url(re.compile(r".*/result\?orderId=.*"), timeout=30_000)
    assert "Thank you!" in page.inner_text("h1")


def test_paid_payment_link(demo, page):
    page.goto(demo["shop"])
    page.click("#link-tea")
    link = page.inner_text("a.link")
    assert "/l/" in link
    assert page.is_visible("text=Share on WhatsApp")
    shot(page, "05-payment-link")
    page.goto(link)
    page.click("text=Pay with Kaspi")
    page.click("button[value=pay]")
    page.wait_for_selector("text=Payment received")
    page.goto(link)
    assert "Paid." in page.content()


def test_dashboard_login_and_refund(demo, page):
    page.goto(demo["admin"] + "/admin")
    page.wait_for_url(re.compile(r".*/admin/login$"))
    page.fill("#password", "wrong password")
    page.click("#sign-in")
    assert "Wrong password" in page.content()
    page.goto(demo["admin"] + "/admin/login")
    page.fill("#password", demo["password"])
    page.click("#sign-in")
    page.wait_for_url(re.compile(r".*/admin$"))
    shot(page, "06-admin-orders")
    page.select_option("select[name=status]", "paid")
    page.click("text=Filter")
    page.click("#orders a >> nth=0")
    page.wait_for_selector("#refund")
    page.fill("#refund-amount", "100")
    page.click("#refund")
    page.wait_for_selector("#flash")
    assert "Refunded" in page.inner_text("#flash")
    assert page.inner_text("#refunded") == "100\u00a0₸"
    shot(page, "07-admin-order-refunded")
    page.click("#sign-out")
    page.wait_for_url(re.compile(r".*/admin/login$"))
