"""The review view of the web app in a real headless browser: Debian's chromium driven through chromium-driver.

Nothing is downloaded: Selenium is given /usr/bin/chromedriver, so Selenium Manager never runs.
``INVOICES_REVIEW_SCREENSHOT=docs/review.png`` also saves the README's screenshot of the page.
"""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from pipeline.review import review_history, review_queue
from pipeline.web import WebServer
from tests.browser import CHROMEDRIVER, CHROMIUM, FLAGS, save_screenshot, type_keys, waiting
from tests.review_stores import ReviewStore, build_review_store, index_row, stored_json

pytestmark = pytest.mark.slow


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run scripts/install-system-deps.sh (chromium, chromium-driver)"
        )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ReviewStore, WebServer]]:
    built = build_review_store(tmp_path / "store")
    server = WebServer(str(built.path), "browser-clerk").start()
    try:
        yield built, server
    finally:
        server.close()


def active_field(browser: WebDriver) -> str | None:
    # Asked in the page itself: the focused element may be replaced while the next invoice renders.
    return browser.execute_script(
        "const e = document.activeElement; return e ? e.dataset.field || null : null;"
    )


def error_text(browser: WebDriver, field: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, f'.field[data-field="{field}"] .error').text


def test_correct_fields_in_the_browser(
    served: tuple[ReviewStore, WebServer], driver: WebDriver, tmp_path: Path
) -> None:
    built, server = served
    wait = waiting(driver)
    driver.get(server.url + "review")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#cards .field")) == 3)
    wait.until(lambda d: active_field(d) == "buyer_name")
    assert "2 invoices · 4 fields to review" in driver.find_element(By.ID, "counts").text
    assert "reviewer: browser-clerk" in driver.find_element(By.ID, "who").text
    card = driver.find_element(By.CSS_SELECTOR, '.field[data-field="total_amount"]')
    assert "total is 48360.12, but amount + tax and the amount in words say 48360.72" in card.text
    seller_card = driver.find_element(By.CSS_SELECTOR, '.field[data-field="seller_tax_id"]')
    assert "check character is 6 but the first 17 characters require 5" in seller_card.text

    # Crops and the page are real images; the highlight sits on the focused field's box.
    wait.until(
        lambda d: all(
            img.get_property("complete") and img.get_property("naturalWidth") > 0
            for img in d.find_elements(By.CSS_SELECTOR, ".crop, #page-img")
        )
    )
    page = driver.find_element(By.ID, "page-img")
    mark = driver.find_element(By.ID, "mark")
    assert mark.is_displayed()
    scale = page.size["width"] / 1890
    assert abs((mark.location["x"] - page.location["x"]) - (312 - 4) * scale) < 4
    assert abs((mark.location["y"] - page.location["y"]) - (272 - 4) * scale) < 4

    # Enter on an unchanged value accepts it; the focus moves on.
    type_keys(driver, Keys.ENTER)
    wait.until(lambda d: active_field(d) == "seller_tax_id")
    assert "accepted" in driver.find_element(By.CSS_SELECTOR, '.field[data-field="buyer_name"] .outcome').text
    assert abs((mark.location["y"] - page.location["y"]) - (895 - 4) * scale) < 4  # the highlight followed

    # Bad input is refused with the reason, and nothing is stored.
    type_keys(driver, "9111", Keys.ENTER)
    wait.until(lambda d: "has 4 characters" in error_text(d, "seller_tax_id"))
    assert active_field(driver) == "seller_tax_id"
    if shot := os.environ.get("INVOICES_REVIEW_SCREENSHOT"):
        save_screenshot(driver, Path(shot))
    store = built.open()
    try:
        assert stored_json(store, built.vat_id)["fields"]["seller_tax_id"]["value"] == "91110115MA56E82N06"
        assert [r["field"] for r in review_history(store, built.vat_id)] == ["buyer_name"]
    finally:
        store.close()

    # Tab moves on without storing; typing corrects.
    type_keys(driver, Keys.TAB)
    wait.until(lambda d: active_field(d) == "total_amount")
    type_keys(driver, "48360.7x", Keys.ENTER)
    wait.until(lambda d: "is not an amount" in error_text(d, "total_amount"))
    type_keys(driver, Keys.ESCAPE)  # back to the value read; then a correct value
    type_keys(driver, "48360.72", Keys.ENTER)
    wait.until(lambda d: active_field(d) == "seller_tax_id")  # the one left open
    type_keys(driver, "91110115MA56E82N05", Keys.ENTER)

    # The last field done: the next invoice is there at once (it was fetched in advance).
    started = time.monotonic()
    waiting(driver, 5).until(lambda d: active_field(d) == "issue_date")
    assert time.monotonic() - started < 5
    assert driver.find_element(By.CSS_SELECTOR, "#doc-head .title").text == "en_invoice.png"
    assert "1 invoice · 1 fields to review · 1 done" in driver.find_element(By.ID, "counts").text

    store = built.open()
    try:
        fields = stored_json(store, built.vat_id)["fields"]
        assert (fields["total_amount"]["value"], fields["total_amount"]["source"]) == ("48360.72", "review")
        assert (fields["seller_tax_id"]["value"], fields["seller_tax_id"]["source"]) == (
            "91110115MA56E82N05",
            "review",
        )
        assert (fields["buyer_name"]["status"], fields["buyer_name"]["source"]) == ("ok", "ocr")
        history = review_history(store, built.vat_id)
        assert [(r["field"], r["action"], r["reviewer"]) for r in history] == [
            ("buyer_name", "accept", "browser-clerk"),
            ("total_amount", "correct", "browser-clerk"),
            ("seller_tax_id", "correct", "browser-clerk"),
        ]
        assert history[1]["old_value"] == "48360.12" and history[1]["new_value"] == "48360.72"
        row = index_row(store, built.vat_id)
        assert (row["status"], row["review_fields"]) == ("ok", "")
        assert [entry.document_id for entry in review_queue(store)] == [built.generic_id]
    finally:
        store.close()

    # A date that does not exist is refused on the next invoice too.
    type_keys(driver, "2025-02-30", Keys.ENTER)  # the value read is selected: typing replaces it
    wait.until(lambda d: "2025-02-30 is not a date that exists" in error_text(d, "issue_date"))
    store = built.open()
    try:
        assert review_history(store, built.generic_id) == []
    finally:
        store.close()

    # A fresh page load shows only what is left.
    driver.get(server.url + "review")
    wait.until(lambda d: active_field(d) == "issue_date")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#queue-list li")) == 1


def test_wrong_token_is_forbidden(served: tuple[ReviewStore, WebServer], driver: WebDriver) -> None:
    built, server = served
    for path in ("/", "/api/queue", f"/{server.token}x/", "/api/documents/" + built.vat_id):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", path if path.startswith(f"/{server.token}") else "/wrong" + path)
        assert connection.getresponse().status == 403, path
        connection.close()
    # The browser gets the same answer, and a page without the token shows no invoice.
    driver.get(f"http://127.0.0.1:{server.port}/wrong-token/")
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "forbidden" in body and "vat_special_clean" not in body
    status = driver.execute_script(
        "const r = new XMLHttpRequest(); r.open('GET', '/wrong-token/api/queue', false); r.send(); return r.status;"
    )
    assert status == 403
