"""The console in a real headless Chromium (Debian's chromium and chromium-driver, driven
by Selenium) against a distributed orderflow on the real RabbitMQ and PostgreSQL.

Outside CI a missing browser skips these tests with the reason; under ``CI=true`` it
fails them (``.ci/run`` installs it). A screenshot of each view lands in
``results/console/``.
"""

from __future__ import annotations

import base64
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Cluster, quick_to_give_up, wait_until

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("ORDERFLOW_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ORDERFLOW_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "results" / "console"
XSS_SKU = "<img src=x onerror=alert(1)>"
WAIT = 15  # seconds for the page to show what it must


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium, from Debian's packages (nothing downloads a browser)."""
    if (reason := _missing()) is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests cannot run: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def console_url(cluster: Cluster) -> str:
    return f"http://127.0.0.1:{cluster.ports['gateway']}/console/"


def sign_in(browser: Any, cluster: Cluster, token: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(console_url(cluster))
    found(browser, "#token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()


def found(browser: Any, selector: str) -> Any:
    """The element ``selector`` once it is there (polled up to WAIT seconds)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    located = shown.presence_of_element_located((By.CSS_SELECTOR, selector))
    return WebDriverWait(browser, WAIT).until(located)


def screenshot(browser: Any, name: str) -> None:
    """The whole page as it is now, beyond the window's height (Chromium's DevTools)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def no_alert(browser: Any) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        browser.switch_to.alert  # noqa: B018 - raises when there is none
    except NoAlertPresentException:
        return True
    return False


def place(cluster: Cluster, customer: str, sku: str) -> str:
    body = {"currency": "EUR", "lines": [{"sku": sku, "quantity": 2, "unit_price": "12.50"}]}
    status, order, _ = cluster.request(
        "POST",
        "orders",
        "/orders",
        body,
        {"Idempotency-Key": f"console-{customer}-{sku[:8]}"},
        token=cluster.token(customer),
    )
    assert status == 201, order
    return order["id"]


def test_a_customer_finds_their_order_and_reads_every_step_of_its_saga_in_order(
    cluster: Cluster, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    # Given a confirmed order of c1 whose SKU is an HTML payload
    order_id = place(cluster, "c1", XSS_SKU)
    cluster.wait_for_status(order_id, "confirmed")
    # When c1 signs in to the console
    sign_in(browser, cluster, cluster.token("c1"))
    row = found(browser, f'#orders tr[data-order="{order_id}"]')
    assert "confirmed" in row.text and "25.00 EUR" in row.text
    screenshot(browser, "orders")
    # And opens the order
    row.find_element(By.CSS_SELECTOR, "a").click()
    found(browser, "#timeline li")
    steps = browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    # Then its saga shows every step, in order, and its invoice
    assert [step.get_attribute("data-event") for step in steps] == [
        "OrderPlaced",
        "InvoiceIssued",
    ]
    assert found(browser, "#invoice-fields").text.count("INV-") == 1
    # And the SKU is shown as the characters it is, never run
    assert found(browser, "td.sku").text == XSS_SKU
    assert browser.find_elements(By.CSS_SELECTOR, "#lines img") == []
    assert no_alert(browser)
    screenshot(browser, "order")


def test_a_customer_typing_another_customers_order_id_is_told_not_found(
    cluster: Cluster, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    theirs = place(cluster, "c2", "SKU-THEIRS")
    cluster.wait_for_status(theirs, "confirmed")
    sign_in(browser, cluster, cluster.token("c1"))
    found(browser, "#order-lookup").send_keys(theirs)
    browser.find_element(By.ID, "find").click()
    message = found(browser, "#message:not([hidden])")
    assert message.text == "Not found."
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline") == []
    screenshot(browser, "not-found")


def test_an_operator_finds_a_confirmed_order_by_id_and_sees_every_step_in_order(
    cluster: Cluster, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    order_id = place(cluster, "c3", "SKU-OPS")
    cluster.wait_for_status(order_id, "confirmed")
    sign_in(browser, cluster, cluster.token("alice", "operator"))
    found(browser, "#orders tbody tr")  # every customer's list, before any filter
    found(browser, "#order-lookup").send_keys(order_id)
    browser.find_element(By.ID, "find").click()
    found(browser, "#timeline li")
    assert found(browser, "#order-id").text == order_id
    steps = browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    assert [step.get_attribute("data-event") for step in steps] == [
        "OrderPlaced",
        "InvoiceIssued",
    ]
    times = [step.find_element(By.CSS_SELECTOR, ".step-time").text for step in steps]
    assert "(+" not in times[0] and "(+" in times[1]  # the time since the step before
    assert "c3" in found(browser, "#order-fields").text
    screenshot(browser, "operator-order")


def test_a_cancelled_order_shows_its_reason_and_its_voided_invoice(
    cluster: Cluster, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    order_id = place(cluster, "c4", "SKU-CANCEL")
    cluster.wait_for_status(order_id, "confirmed")
    status, _, _ = cluster.request(
        "POST", "orders", f"/orders/{order_id}/cancel", {}, token=cluster.token("c4")
    )
    assert status == 200
    wait_until(
        lambda: (
            cluster.request("GET", "invoices", f"/invoices?order_id={order_id}")[1]["items"][0][
                "status"
            ]
            == "void"
        ),
        30,
        "the invoice to be voided",
    )
    sign_in(browser, cluster, cluster.token("alice", "operator"))
    found(browser, "#filter-cancel_reason")
    browser.get(console_url(cluster) + "#/orders?cancel_reason=customer_cancelled")
    row = found(browser, f'#orders tr[data-order="{order_id}"]')
    assert "cancelled (customer_cancelled)" in row.text
    row.find_element(By.CSS_SELECTOR, "a").click()
    fields = found(browser, "#order-fields").text
    assert "customer_cancelled" in fields
    invoice = found(browser, "#invoice-fields").text
    assert "void" in invoice and "Void reason" in invoice
    events = [
        step.get_attribute("data-event")
        for step in browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    ]
    assert events == ["OrderPlaced", "InvoiceIssued", "CancelRequested"]
    screenshot(browser, "cancelled-order")


def test_an_operator_replays_a_dead_letter_from_the_page_once(make_cluster, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.integration.test_dlq_distributed import dead_lettered_order, dead_letters

    # Given an issue_invoice that dead-lettered (the way the dlq integration test makes one)
    cluster = quick_to_give_up(make_cluster)
    order = dead_lettered_order(cluster)
    cluster.wait_for_status(order["id"], "cancelled", timeout=60)
    (letter,) = [
        item
        for item in dead_letters(cluster)
        if item["order_id"] == order["id"] and item["actor_name"] == "issue_invoice"
    ]
    # When an operator opens the dead letters and clicks Replay on it
    sign_in(browser, cluster, cluster.token("alice", "operator"))
    found(browser, "#nav a[href='#/dead-letters']").click()
    row = found(browser, f'#dead-letters tr[data-message="{letter["message_id"]}"]')
    assert "not yet" in row.find_element(By.CSS_SELECTOR, ".replayed").text
    screenshot(browser, "dead-letters")
    row.find_element(By.CSS_SELECTOR, "button.replay").click()
    outcome = row.find_element(By.CSS_SELECTOR, ".outcome")
    WebDriverWait(browser, WAIT).until(lambda _: outcome.text)
    # Then the page shows it sent again and replayed by the operator
    assert outcome.text.startswith("Sent again as ")
    assert row.find_element(By.CSS_SELECTOR, ".replayed").text.startswith("by alice at ")
    # And orderflow dlq list says so too
    (listed,) = [
        item
        for item in dead_letters(cluster, "--all")
        if item["message_id"] == letter["message_id"]
    ]
    assert listed["replayed_by"] == "alice" and listed["replayed_at"]
    # And a second click is refused with a clear message
    row.find_element(By.CSS_SELECTOR, "button.replay").click()
    WebDriverWait(browser, WAIT).until(lambda _: outcome.text.startswith("Not replayed"))
    assert "already replayed" in outcome.text and "by alice" in outcome.text
    screenshot(browser, "dead-letter-replayed")


def test_a_refused_token_sends_the_user_back_to_sign_in_with_a_message(
    cluster: Cluster, browser: Any
) -> None:
    sign_in(browser, cluster, "not-a-token")
    reason = found(browser, "#sign-in-reason")
    assert reason.text.startswith("Signed out:")
    assert browser.execute_script("return sessionStorage.getItem('orderflow.token')") is None
    assert not browser.find_element("id", "nav").is_displayed()
    screenshot(browser, "sign-in")


def test_every_console_answer_carries_the_content_security_policy(cluster: Cluster) -> None:
    for name in (
        "",
        "main.js",
        "api.js",
        "dom.js",
        "views.js",
        "health.js",
        "console.css",
        "missing.js",
    ):
        request = urllib.request.Request(console_url(cluster) + name)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                headers = response.headers
        except urllib.error.HTTPError as error:
            assert error.code == 404
            headers = error.headers
        assert "script-src 'self'" in headers["Content-Security-Policy"], name
        assert headers["X-Content-Type-Options"] == "nosniff"


def health_table(browser: Any, table: str) -> dict[str, dict[str, Any]]:
    """A table of the Health view as data, read in one go (the view redraws every few
    seconds, so elements found earlier may be gone): its rows by their ``data-*`` key, each
    with its class and its cells' text."""
    return browser.execute_script(
        """
        const rows = {};
        for (const row of document.querySelectorAll(`#${arguments[0]} tbody tr`)) {
          const key = row.dataset.code || row.dataset.service || row.dataset.queue;
          const cells = [...row.cells].map((cell) => cell.textContent);
          if (key) rows[key] = { ok: row.className !== "bad", cells };
        }
        return rows;
        """,
        table,
    )


def test_an_operator_watches_the_health_turn_red_and_green_again_without_a_reload(
    make_cluster, browser: Any
) -> None:
    import psycopg2
    from selenium.webdriver.support.ui import WebDriverWait

    # Given the system with its audit part (auditing every second) and a confirmed order
    cluster = make_cluster(AUDIT_INTERVAL="1")
    cluster.start()
    cluster.start("audit-api")
    order_id = place(cluster, "c5", "SKU-HEALTH")
    cluster.wait_for_status(order_id, "confirmed")
    # When an operator opens the Health view
    sign_in(browser, cluster, cluster.token("alice", "operator"))
    found(browser, "#nav a[href='#/health']").click()
    until = WebDriverWait(browser, WAIT).until

    def verdict() -> str:
        return browser.execute_script(
            "return document.querySelector('#audit-verdict')?.textContent ?? ''"
        )

    def pending(service: str) -> str:
        return health_table(browser, "outboxes").get(service, {"cells": ["", ""]})["cells"][1]

    # Then the seven invariants hold, nothing waits in an outbox, each queue has a worker
    # and both fronts are ready
    until(lambda _: verdict() == "every invariant holds.")
    invariants = health_table(browser, "invariants")
    assert sorted(invariants) == [f"I{n}" for n in range(1, 8)]
    assert all(row["ok"] and row["cells"][2] == "holds" for row in invariants.values())
    assert [pending("orders"), pending("invoices")] == ["0", "0"]
    queues = health_table(browser, "queues")
    assert {"orders", "invoices", "orders.DQ", "orders.XQ", "invoices.XQ"} <= set(queues)
    assert int(queues["orders"]["cells"][2]) >= 1 and int(queues["invoices"]["cells"][2]) >= 1
    fronts = browser.execute_script(
        "return [...document.querySelectorAll('#fronts li')].map((li) => li.textContent)"
    )
    assert fronts == ["orders: ready", "invoices: ready"]
    screenshot(browser, "health")
    browser.execute_script("window.orderflowNotReloaded = true")
    # When an invoice's total is changed behind the saga's back, and an order waits in the
    # orders outbox because the orders relay is stopped
    invoices = psycopg2.connect(cluster.database_url("invoices"))
    try:
        with invoices, invoices.cursor() as cursor:
            cursor.execute(
                "UPDATE invoices SET total_minor = total_minor + 1 WHERE order_id = %s",
                (order_id,),
            )
            assert cursor.rowcount == 1
        cluster.stop("orders-relay")
        waiting = place(cluster, "c6", "SKU-WAITING")
        # Then the page, without a reload, shows I4 broken naming the order, and the backlog
        until(lambda _: verdict() == "an invariant is broken.")
        broken = {
            code: row for code, row in health_table(browser, "invariants").items() if not row["ok"]
        }
        assert list(broken) == ["I4"]
        assert broken["I4"]["cells"][2] == "BROKEN" and order_id in broken["I4"]["cells"][4]
        until(lambda _: pending("orders") == "1")
        screenshot(browser, "health-broken")
        # And when the total is put back and the relay runs again, it turns green again
        with invoices, invoices.cursor() as cursor:
            cursor.execute(
                "UPDATE invoices SET total_minor = total_minor - 1 WHERE order_id = %s",
                (order_id,),
            )
    finally:
        invoices.close()
    cluster.start("orders-relay")
    cluster.wait_for_status(waiting, "confirmed")
    until(lambda _: verdict() == "every invariant holds." and pending("orders") == "0")
    assert browser.execute_script("return window.orderflowNotReloaded") is True
    assert int(found(browser, "#health-at").get_attribute("data-reads")) >= 3
