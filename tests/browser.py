"""Driving Debian's chromium through chromium-driver in the browser tests (nothing is downloaded).

The binaries and the headless flags, a wait that survives re-rendered elements, typing into the focused
element, and the compact PNG screenshots saved for the README.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,900",
    "--lang=en-US",
)


def waiting(browser: WebDriver, seconds: float = 20) -> WebDriverWait:
    """A wait that looks again when the page re-rendered the element it was reading (a stale reference)."""
    return WebDriverWait(browser, seconds, ignored_exceptions=(StaleElementReferenceException,))


def type_keys(browser: WebDriver, *keys: str) -> None:
    """Keys as a person types them, into whatever has the focus."""
    ActionChains(browser).send_keys(*keys).perform()


def save_screenshot(browser: WebDriver, path: Path) -> None:
    """A compact PNG for the README (a 256-colour palette keeps it well under 300 KB)."""
    image = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
