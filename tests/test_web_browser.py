"""The web app in a real headless browser (Debian's chromium through chromium-driver, nothing downloaded):
search by part of a seller's name, open the invoice, correct a field and find the new value; the
statistics' sums; retrying a failed hot-folder file; the Chinese/English switch; 200 % zoom.

``INVOICES_WEB_SCREENSHOTS=docs`` also saves the README's screenshots of each view there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from pipeline.web import WebServer
from tests.browser import CHROMEDRIVER, CHROMIUM, FLAGS, save_screenshot, type_keys, waiting
from tests.review_stores import build_review_store
from tests.web_stores import PDF_SAMPLES, WebStore, build_web_store, expected_fields, platform_and_ledger

pytestmark = pytest.mark.slow

SHOTS = os.environ.get("INVOICES_WEB_SCREENSHOTS")


def browser(tmp_path: Path, *extra: str) -> WebDriver:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run scripts/install-system-deps.sh (chromium, chromium-driver)"
        )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, *extra):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    running = browser(tmp_path, "--window-size=1280,860")
    try:
        yield running
    finally:
        running.quit()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[WebStore, WebServer, Path]]:
    store = build_web_store(tmp_path / "store")
    folder = tmp_path / "hot"
    for name in ("", "done", "failed", ".processing"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    server = WebServer(str(store.path), "browser-clerk", folder=folder).start()
    try:
        yield store, server, folder
    finally:
        server.close()


def shot(driver: WebDriver, name: str) -> None:
    if SHOTS:
        save_screenshot(driver, Path(SHOTS) / f"web-{name}.png")


def result_names(driver: WebDriver) -> list[str]:
    # One script reads every row at once: the table is re-rendered as results arrive, so element
    # references fetched one by one can go stale between two reads.
    names = driver.execute_script(
        "return [...document.querySelectorAll('#results tbody td.file')].map(cell => cell.innerText.trim());"
    )
    return list(names)


def test_search_open_correct_and_find_again(
    served: tuple[WebStore, WebServer, Path], driver: WebDriver
) -> None:
    _, server, _ = served
    wait = waiting(driver)
    driver.get(server.url + "search")
    wait.until(lambda d: len(result_names(d)) == 4)
    type_keys(driver, "/")  # the search box, from the keyboard
    assert driver.switch_to.active_element.get_attribute("id") == "q"
    type_keys(driver, "智源", Keys.ENTER)
    wait.until(lambda d: result_names(d) == ["vat_e_general.pdf"])
    assert "q=%E6%99%BA%E6%BA%90" in driver.current_url  # the address holds the search
    shot(driver, "search")

    driver.find_element(By.CSS_SELECTOR, "#results a.open").click()
    wait.until(lambda d: d.find_elements(By.ID, "invoice"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "vat_e_general.pdf"
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.page g.box")) >= 5
    image = driver.find_element(By.CSS_SELECTOR, "svg.page image")
    loaded = driver.execute_script(
        "const img = new Image(); img.src = arguments[0].href.baseVal; await img.decode(); return img.naturalWidth;",
        image,
    )
    assert loaded > 500  # the page image itself is served
    shot(driver, "invoice")

    row = driver.find_element(By.CSS_SELECTOR, '.field-row[data-field="buyer_name"]')
    row.find_element(By.CSS_SELECTOR, "button.edit").click()
    value = row.find_element(By.CSS_SELECTOR, "form.correct input")
    assert driver.switch_to.active_element == value
    type_keys(driver, "2024-13-01")  # typed over the selected value; a buyer's name is text: stored as typed
    type_keys(driver, Keys.ESCAPE)  # cancelled, nothing stored
    assert row.find_element(By.CSS_SELECTOR, "form.correct").get_attribute("hidden") is not None
    row.find_element(By.CSS_SELECTOR, "button.edit").click()
    type_keys(driver, "众合（北京）新能源科技有限责任公司", Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#history tbody tr"))
    history = driver.find_element(By.ID, "history").text
    assert "buyer_name" in history and "browser-clerk" in history and "新能源" in history
    cell = driver.find_element(By.CSS_SELECTOR, '.field-row[data-field="buyer_name"] .shown')
    assert cell.text == "众合（北京）新能源科技有限责任公司"

    driver.get(server.url + "search")
    box = wait.until(lambda d: d.find_element(By.ID, "q"))
    box.send_keys("新能源", Keys.ENTER)
    wait.until(lambda d: result_names(d) == ["vat_e_general.pdf"])
    assert "新能源" in driver.find_element(By.ID, "results").text


def test_statistics_show_the_sums_of_the_samples(
    served: tuple[WebStore, WebServer, Path], driver: WebDriver
) -> None:
    _, server, _ = served
    expected = [expected_fields(name) for name in PDF_SAMPLES]
    total = sum((Decimal(f["total_amount"]) for f in expected), Decimal(0))
    tax = sum((Decimal(f["tax_amount"]) for f in expected), Decimal(0))
    driver.get(server.url + "stats?source=.pdf")
    wait = waiting(driver)
    wait.until(lambda d: d.find_elements(By.ID, "totals"))
    assert driver.find_element(By.CSS_SELECTOR, '#totals b[data-key="count"]').text == "3"
    assert Decimal(driver.find_element(By.CSS_SELECTOR, '#totals b[data-key="total"]').text) == total
    assert Decimal(driver.find_element(By.CSS_SELECTOR, '#totals b[data-key="tax"]').text) == tax
    months = driver.find_elements(By.CSS_SELECTOR, 'table[data-table="months"] td[data-col="total"]')
    assert sum(Decimal(cell.text) for cell in months) == total
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")) >= 4
    shot(driver, "statistics")


def test_a_failed_hot_folder_file_is_retried_from_the_page(
    served: tuple[WebStore, WebServer, Path], driver: WebDriver
) -> None:
    _, server, folder = served
    (folder / "failed" / "scan-7.pdf").write_bytes(b"%PDF-1.4 cut off")
    (folder / "failed" / "scan-7.pdf.error.txt").write_text("ImageUnreadable: the PDF is cut off\n")
    driver.get(server.url + "folder")
    wait = waiting(driver)
    row = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '#failed-files tr[data-name="scan-7.pdf"]'))
    assert "ImageUnreadable: the PDF is cut off" in row.text
    assert driver.find_element(By.CSS_SELECTOR, '#folder-counts td[data-state="failed"]').text == "1"
    shot(driver, "folder")
    row.find_element(By.CSS_SELECTOR, "button.retry").click()
    wait.until(lambda d: "moved back to the inbox" in row.find_element(By.CSS_SELECTOR, ".retried").text)
    assert (folder / "scan-7.pdf").read_bytes() == b"%PDF-1.4 cut off"
    assert not (folder / "failed" / "scan-7.pdf").exists()
    assert not (folder / "failed" / "scan-7.pdf.error.txt").exists()
    driver.refresh()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '#folder-counts td[data-state="inbox"]').text == "1")
    assert not driver.find_elements(By.ID, "failed-files")


def test_the_tax_platform_outcome_on_the_invoice_and_its_filter(
    served: tuple[WebStore, WebServer, Path], driver: WebDriver, tmp_path: Path
) -> None:
    from pipeline.cli import main

    store, server, _ = served
    platform, ledger = platform_and_ledger(tmp_path)
    args = ["reconcile", "--ledger", str(ledger), "--tax-platform", str(platform), "--store", str(store.path)]
    assert main([*args, "--out", str(tmp_path / "report")]) in (0, 1)
    wait = waiting(driver)
    driver.get(server.url + "search")
    wait.until(lambda d: len(result_names(d)) == 4)
    driver.find_element(By.CSS_SELECTOR, "details.filters summary").click()
    Select(driver.find_element(By.NAME, "platform_status")).select_by_value("voided")
    driver.find_element(By.CSS_SELECTOR, "details.filters button[type=submit]").click()
    wait.until(lambda d: result_names(d) == ["fully_digital_general.pdf"])
    assert "platform_status=voided" in driver.current_url

    driver.get(server.url + f"invoice/{store.ids['vat_e_general.pdf']}")
    section = wait.until(lambda d: d.find_element(By.ID, "three-way"))
    text = section.text.lower()
    assert "booked, but red-reversed" in text and "partly red-reversed" in text
    assert "remains: 6789.81" in section.text
    driver.execute_script("arguments[0].scrollIntoView()", section)
    shot(driver, "invoice-platform")


def test_chinese_english_switch(served: tuple[WebStore, WebServer, Path], driver: WebDriver) -> None:
    _, server, _ = served
    wait = waiting(driver)
    driver.get(server.url + "search?q=%E6%99%BA%E6%BA%90")  # the browser prefers en-US
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert "Statistics" in driver.find_element(By.CSS_SELECTOR, "header nav").text
    driver.find_element(By.ID, "lang-switch").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN")
    assert "统计" in driver.find_element(By.CSS_SELECTOR, "header nav").text
    assert result_names(driver) == ["vat_e_general.pdf"]  # the search survived the switch
    driver.find_element(By.LINK_TEXT, "统计").click()  # the choice is kept on the next page
    wait.until(lambda d: "按开票月份" in d.find_element(By.TAG_NAME, "main").text)
    shot(driver, "statistics-zh")
    driver.find_element(By.ID, "lang-switch").click()
    wait.until(lambda d: "Per month of issue" in d.find_element(By.TAG_NAME, "main").text)


def test_readable_at_200_percent_zoom(tmp_path: Path) -> None:
    store = build_web_store(tmp_path / "store")
    review = build_review_store(tmp_path / "review-store")
    zoomed = browser(tmp_path, "--window-size=1280,860")
    # 200 % zoom of a 1280 x 860 window: a 640 x 430 CSS-pixel viewport at twice the pixel density.
    zoomed.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 640, "height": 430, "deviceScaleFactor": 2, "mobile": False},
    )
    try:
        for path, views in ((store.path, ("search", "stats", "folder", "help")), (review.path, ("review",))):
            with WebServer(str(path), "zoom") as server:
                server.start()
                for view in views:
                    zoomed.get(server.url + view)
                    waiting(zoomed).until(lambda d: d.find_elements(By.TAG_NAME, "footer"))
                    width = zoomed.execute_script("return window.innerWidth")
                    scroll = zoomed.execute_script("return document.documentElement.scrollWidth")
                    assert width <= 700, width  # 1280 device pixels at 2x: about 640 CSS pixels
                    assert scroll <= width + 1, (view, scroll, width)  # nothing runs off to the side
                    if view == "review" and SHOTS:
                        waiting(zoomed).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#cards .field"))
    finally:
        zoomed.quit()
