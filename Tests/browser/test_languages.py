"""Every payer page in Kazakh, Russian and English, in Chromium with that locale: full payments
(redirect, QR and payment link) on both profiles, the page's text, `lang` and amounts checked,
axe-core run on each page (no serious or critical violation), paying and switching language
with the keyboard only. Screenshots per language go to out/screenshots/."""
import json
import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from conftest import ROOT, shot

LOCALES = {"kk": "kk-KZ", "ru": "ru-RU", "en": "en-US"}
AXE = Axe()


def catalog(module, lang):
    with open(ROOT / "Sources" / module / "Templates" / "messages" / f"{lang}.json", encoding="utf-8") as f:
        return json.load(f)


def say(module, lang, key, **values):
    """A catalog's text with its values put in, as the page shows it."""
    text = catalog(module, lang)[key]
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    return text


def tenge(amount, lang):
    """ICU's kk_KZ, ru_KZ and en_KZ grouping (a no-break space in all three), and the sign after one."""
    grouped = f"{amount:,}".replace(",", "\u00a0")
    return grouped + "\u00a0₸"


def text(page, selector):
    return page.text_content(selector) or ""


def check(page, lang, name):
    """The page is in `lang`, passes axe, and is kept as a screenshot."""
    assert page.get_attribute("html", "lang") == lang, page.url
    violations = AXE.run(page).response["violations"]
    serious = [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in violations
               if v.get("impact") in ("serious", "critical")]
    assert not serious, f"{page.url}: {serious}"
    shot(page, f"{lang}-{name}")


def press_until(page, predicate, limit=40):
    """Tabs through the page until the focused element satisfies `predicate` (a JS function of it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"({predicate})(document.activeElement)"):
            return
    pytest.fail(f"no focusable element matched {predicate} on {page.url}")


@pytest.fixture(params=list(LOCALES))
def lang(request):
    return request.param


def phone_of(browser, lang):
    """The payer's phone: a page in a context of its own (closing a second page of one
    context can hang headless Chromium), in the payer's locale."""
    context = browser.new_context(locale=LOCALES[lang])
    phone = context.new_page()
    phone.set_default_timeout(20_000)
    return context, phone


@pytest.fixture
def payer(browser, lang):
    """A page in a browser whose locale is the payer's."""
    context = browser.new_context(locale=LOCALES[lang], viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def test_redirect_payment_by_keyboard(demo, payer, lang):
    payer.goto(demo["shop"])
    assert text(payer, "h1") == say("KaspiDemo", lang, "shop_title")
    assert tenge(1200, lang) in text(payer, ".items")
    assert say("KaspiDemo", lang, "item_tea") in text(payer, ".items")
    check(payer, lang, "01-shop")
    # Keyboard only: to the tea's Buy button, Enter; on Kaspi's page, to Pay, Enter.
    press_until(payer, "e => e.id === 'buy-tea'")
    payer.keyboard.press("Enter")
    payer.wait_for_url(re.compile(r".*/pay/[0-9a-f]+$"))
    assert text(payer, ".amount") == tenge(1200, lang)
    assert text(payer, "button[value=pay]") == say("KaspiSandbox", lang, "pay_button", amount=tenge(1200, lang))
    assert payer.get_attribute("figure img", "alt") == say("KaspiSandbox", lang, "qr_alt", amount=tenge(1200, lang), merchant="KaspiKit demo shop")
    check(payer, lang, "02-sandbox-payment-page")
    press_until(payer, "e => e.value === 'pay'")
    payer.keyboard.press("Enter")
    payer.wait_for_url(re.compile(r".*/result\?status=success.*"))
    assert text(payer, "h1") == say("KaspiDemo", lang, "result_paid_title")
    assert tenge(1200, lang) in text(payer, ".result")
    check(payer, lang, "03-shop-result-paid")


def test_payment_link_through_the_gateways_pages(demo, payer, lang):
    payer.goto(demo["shop"])
    payer.click("#link-tea")
    link = text(payer, "a.link")
    assert "/l/" in link, "the link is written out, not only drawn"
    assert payer.get_attribute("img.qr", "alt") == say("KaspiDemo", lang, "link_qr_alt", amount=tenge(1200, lang))
    check(payer, lang, "04-shop-payment-link")
    payer.goto(link)
    assert text(payer, ".big") == tenge(1200, lang)
    assert text(payer, "button.pay") == say("KaspiGateway", lang, "pay_with_kaspi")
    check(payer, lang, "05-gateway-link-page")
    payer.click("button.pay")
    payer.click("button[value=pay]")
    payer.wait_for_selector("h1:has-text('%s')" % say("KaspiGateway", lang, "result_paid_title"))
    assert say("KaspiGateway", lang, "result_paid_amount", amount=tenge(1200, lang)) in text(payer, ".big")
    check(payer, lang, "06-gateway-result-page")
    payer.goto(link)
    assert say("KaspiGateway", lang, "link_paid") in text(payer, "main")


def test_qr_payment(demo, payer, lang, browser):
    payer.goto(demo["shop"])
    payer.click("#qr-chair")
    payer.wait_for_url(re.compile(r".*/qr/ord_.*"))
    assert payer.get_attribute("img.qr", "alt") == say("KaspiDemo", lang, "qr_alt", amount=tenge(12500, lang))
    check(payer, lang, "07-shop-qr")
    # The payer scans: in the sandbox, the newest order's page, in the payer's language.
    context, phone = phone_of(browser, lang)
    phone.goto(demo["sandbox"] + "/sandbox/")
    phone.click("text=kk_")
    assert phone.get_attribute("html", "lang") == lang
    phone.click("button[value=pay]")
    context.close()
    payer.wait_for_url(re.compile(r".*/result\?orderId=.*"), timeout=30_000)
    assert text(payer, "h1") == say("KaspiDemo", lang, "result_paid_title")


def test_the_switcher_by_keyboard_and_the_choice_kept(demo, payer, lang):
    other = {"kk": "ru", "ru": "en", "en": "kk"}[lang]
    payer.goto(demo["shop"])
    press_until(payer, f"e => e.getAttribute('hreflang') === '{other}'")
    payer.keyboard.press("Enter")
    payer.wait_for_url(re.compile(rf".*\?lang={other}$"))
    assert payer.get_attribute("html", "lang") == other
    assert payer.get_attribute(f"nav.languages a[hreflang={other}]", "aria-current") == "page"
    # The cookie keeps the choice over the browser's language, on this server's other pages.
    payer.goto(demo["shop"])
    assert payer.get_attribute("html", "lang") == other
    assert text(payer, "h1") == say("KaspiDemo", other, "shop_title")


def test_qr_profile_link_hand_off(demo_qr, payer, lang, browser):
    payer.goto(demo_qr["shop"])
    check(payer, lang, "qr-01-shop")
    payer.click("#buy-tea")
    payer.wait_for_url(re.compile(r".*/wait/ord_.*"))
    assert text(payer, "#open-kaspi") == say("KaspiDemo", lang, "open_kaspi", amount=tenge(1200, lang))
    check(payer, lang, "qr-02-shop-wait")
    context, kaspi = phone_of(browser, lang)
    kaspi.goto(payer.get_attribute("#open-kaspi", "href"))
    assert text(kaspi, ".amount") == tenge(1200, lang)
    assert text(kaspi, "button[value=scan]") == say("KaspiSandbox", lang, "action_scan")
    check(kaspi, lang, "qr-03-kaspi-page")
    kaspi.click("button[value=scan]")
    assert text(kaspi, "button[value=confirm]") == say("KaspiSandbox", lang, "action_confirm_gold")
    kaspi.click("button[value=confirm]")
    assert text(kaspi, ".status") == say("KaspiSandbox", lang, "qr_status_processed")
    context.close()
    payer.wait_for_url(re.compile(r".*/result\?orderId=.*"), timeout=30_000)
    assert text(payer, "h1") == say("KaspiDemo", lang, "result_paid_title")
    check(payer, lang, "qr-04-shop-result")


def test_qr_profile_qr_and_link(demo_qr, payer, lang):
    payer.goto(demo_qr["shop"])
    payer.click("#qr-lamp")
    payer.wait_for_url(re.compile(r".*/qr/ord_.*"))
    assert payer.get_attribute("img.qr", "alt") == say("KaspiDemo", lang, "qr_alt", amount=tenge(5900, lang))
    check(payer, lang, "qr-05-shop-qr")
    payer.goto(demo_qr["shop"])
    payer.click("#link-lamp")
    link = text(payer, "a.link")
    payer.goto(link)
    assert text(payer, "button.pay") == say("KaspiGateway", lang, "pay_with_kaspi")
    check(payer, lang, "qr-06-gateway-link-page")
    payer.click("button.pay")
    # Kaspi's page for the link's purchase, in the payer's language.
    payer.wait_for_url(re.compile(r".*/pay/[0-9]{41}$"))
    assert text(payer, ".amount") == tenge(5900, lang)
    check(payer, lang, "qr-07-kaspi-link-page")


def test_the_dashboard_in_each_language(demo, payer, lang):
    """The dashboard in the browser's language: its words from the catalog, tenge the local
    way, times with Kazakhstan's zone, a refund answered in that language; axe on each page."""
    page = payer
    page.goto(demo["shop"])
    page.click("#buy-tea")  # an order to look at and refund
    page.wait_for_url(re.compile(r".*/pay/[0-9a-f]+$"))
    page.click("button[value=pay]")
    page.wait_for_url(re.compile(r".*/result\?.*"), timeout=30_000)
    page.goto(demo["admin"] + "/admin/login")
    check(page, lang, "admin-01-login")
    assert text(page, "#sign-in") == say("KaspiGateway", lang, "admin_sign_in")
    page.fill("#password", demo["password"])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/admin$"))
    assert text(page, "nav a[href='/admin']") == say("KaspiGateway", lang, "admin_orders")
    assert say("KaspiGateway", lang, "admin_th_created") + " (UTC+5)" in text(page, "#orders")
    for path, name in [("/admin", "admin-02-orders"), ("/admin/refunds", "admin-03-refunds"), ("/admin/links", "admin-04-links"),
                       ("/admin/events", "admin-05-events"), ("/admin/settings", "admin-06-settings")]:
        page.goto(demo["admin"] + path)
        check(page, lang, name)
    page.goto(demo["admin"] + "/admin?status=paid")
    page.click("#orders a >> nth=0")
    check(page, lang, "admin-07-order")
    assert text(page, "#state") == say("KaspiGateway", lang, "state_paid")
    page.fill("#refund-amount", "1000")
    page.click("#refund")
    page.wait_for_selector("#flash")
    refunded = text(page, "#refunded")
    assert refunded == tenge(1000, lang), refunded
    assert text(page, "#flash").startswith(say("KaspiGateway", lang, "admin_refunded").split("{{")[0]), text(page, "#flash")
    check(page, lang, "admin-08-order-refunded")


def test_the_qr_profiles_dashboard_pages_pass_axe(demo_qr, payer, lang):
    page = payer
    page.goto(demo_qr["admin"] + "/admin/login")
    page.fill("#password", demo_qr["password"])
    page.click("#sign-in")
    page.wait_for_url(re.compile(r".*/admin$"))
    for path, name in [("/admin/kaspi", "admin-qr-01-kaspi"), ("/admin/invoices", "admin-qr-02-invoices")]:
        page.goto(demo_qr["admin"] + path)
        check(page, lang, name)
    assert text(page, "#check-payer") == say("KaspiGateway", lang, "admin_show_payer_name")
