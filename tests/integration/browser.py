"""A real browser for the UI tests: Debian's chromium, driven by Selenium.

`make integration-test` installs chromium and chromium-driver first
(scripts/install-host-tools.sh --ensure-test). Selenium is given both paths,
so it never downloads a browser or a driver of its own.

Every screenshot goes to test-artifacts/ui/ (git-ignored), emptied when the
browser starts: what the last test run saw, for a person to look at.
"""

import base64
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from airflow_ha.paths import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "ui"
WINDOW = "1400,900"
# The UI is a single-page app that fetches its data after the page loads, and
# a 2-core runner busy with the cluster is slow to render it.
WAIT_S = 60.0


class Browser:
    def __init__(self) -> None:
        missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
        if missing:
            raise RuntimeError(
                f"{' and '.join(missing)} missing: run `make test-tools` "
                "(scripts/install-host-tools.sh --ensure-test)"
            )
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        # --no-sandbox: the tests run as root on CI, where chromium's sandbox refuses to start.
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
            options.add_argument(argument)
        options.add_argument(f"--window-size={WINDOW}")
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        shutil.rmtree(SCREENSHOTS, ignore_errors=True)
        SCREENSHOTS.mkdir(parents=True)

    def quit(self) -> None:
        self.driver.quit()

    def open(self, url: str) -> None:
        self.driver.get(url)

    @property
    def url(self) -> str:
        return str(self.driver.current_url)

    def text(self) -> str:
        """The page's visible text. The UI re-renders as its data arrives, which
        can replace the element being read: then it is read again."""
        for _ in range(10):
            try:
                return str(self.driver.find_element(By.TAG_NAME, "body").text)
            except StaleElementReferenceException:
                continue
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def wait_until(self, what: str, condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
        try:
            WebDriverWait(
                self.driver,
                timeout,
                poll_frequency=0.5,
                ignored_exceptions=(StaleElementReferenceException,),
            ).until(lambda _: condition())
        except TimeoutException:
            shot = self.screenshot("timed-out")
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what} on {self.url}\n"
                f"screenshot: {shot}\npage text:\n{self.text()[:2000]}"
            ) from None

    def wait_for_text(self, text: str, timeout: float = WAIT_S) -> None:
        self.wait_until(repr(text), lambda: text in self.text(), timeout)

    def element(self, by: str, selector: str) -> WebElement:
        found: list[WebElement] = []

        def shown() -> bool:
            found[:] = [e for e in self.driver.find_elements(by, selector) if e.is_displayed()]
            return bool(found)

        self.wait_until(f"{selector} to be shown", shown)
        return found[-1]

    def click(self, by: str, selector: str) -> None:
        self._act(by, selector, lambda e: e.click())

    def type_into(self, by: str, selector: str, text: str) -> None:
        self._act(by, selector, lambda e: e.send_keys(text))

    def _act(self, by: str, selector: str, action: Callable[[WebElement], None]) -> None:
        """Acts on the element, found again if a re-render replaced it meanwhile."""
        for _ in range(3):
            try:
                action(self.element(by, selector))
                return
            except StaleElementReferenceException:
                continue
        action(self.element(by, selector))

    def screenshot(self, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def log_in(self, base_url: str, user: str, password: str) -> None:
        """Through the auth manager's login form (FAB), unless already logged in."""
        self.open(base_url + "/")
        self.wait_until(
            "the login form or the UI",
            lambda: "Dags" in self.text() or "Sign In" in self.driver.page_source,
        )
        if "/auth/login" not in self.url:
            return
        self.type_into(By.NAME, "username", user)
        self.type_into(By.NAME, "password", password)
        self.click(By.CSS_SELECTOR, "input[type=submit]")
        self.wait_until("the UI after logging in", lambda: "/auth/login" not in self.url)

    def forget_logins(self) -> None:
        """Log out of every site, as a new browser would be."""
        self.driver.delete_all_cookies()

    def basic_auth(self, user: str, password: str) -> None:
        """Send HTTP basic credentials with every request from now on, as a person
        does after typing them into the browser's login prompt (a headless
        browser has no prompt)."""
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
        )

    def forget_basic_auth(self) -> None:
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})


def task_page(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """The UI's page of one task instance, its log first."""
    page = f"{run_page(base_url, dag_id, run_id)}/tasks/{quote(task_id, safe='')}"
    return page if map_index < 0 else f"{page}/mapped/{map_index}"


def run_page(base_url: str, dag_id: str, run_id: str) -> str:
    return f"{base_url}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
