"""Browser tests: Playwright driving a real headless Chromium against ``live_server``.

They use the system's Chromium (Debian's ``chromium`` package, ``/usr/bin/chromium``;
``CW_CHROMIUM`` names another binary), never a browser Playwright downloads. Where no
Chromium can be found or started, every browser test is skipped with the reason; CI
(``.ci/run``) installs it first, so there they run.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

PASSWORD = "a long browser-test passphrase"


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CW_CHROMIUM"), "/usr/bin/chromium", "chromium"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@pytest.fixture(scope="module", autouse=True)
def _database_calls_beside_playwright() -> Iterator[None]:
    """Playwright's sync API runs an event loop in the test's thread while the browser is
    open; the tests still read and write the database synchronously (factories,
    assertions), which Django refuses inside a running loop unless this is set. Only for
    these modules: the variable never reaches other tests or the processes they start."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser(_database_calls_beside_playwright: None) -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    path = chromium_path()
    if path is None:
        pytest.skip("No Chromium found (apt-get install chromium, or set CW_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=path, headless=True, args=["--no-sandbox"]
            )
        except Exception as error:  # any launch failure means no browser here
            pytest.skip(f"Chromium at {path} cannot start: {error}")
        yield launched
        launched.close()


@pytest.fixture
def lead(django_user_model):
    return django_user_model.objects.create_superuser(
        username="lead", email="lead@example.com", password=PASSWORD
    )


@pytest.fixture
def page(browser, live_server, lead) -> Iterator[object]:
    """A page logged into the admin as ``lead``, at the dashboard."""
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1400, "height": 1000}
    )
    context.set_default_timeout(15_000)
    yield logged_in(context, live_server)
    context.close()


def logged_in(context, live_server) -> object:
    """A new tab of ``context`` logged into the admin as ``lead``, at the dashboard."""
    tab = context.new_page()
    tab.goto("/admin/login/")
    tab.fill("#id_username", "lead")
    tab.fill("#id_password", PASSWORD)
    tab.click("input[type=submit]")
    tab.wait_for_url(f"{live_server.url}/admin/")
    return tab


@pytest.fixture
def screenshots() -> Path | None:
    """Where to write the README's screenshots: ``docs/screenshots`` when
    ``CW_SCREENSHOTS=1`` (to refresh the committed ones), else nowhere."""
    if os.environ.get("CW_SCREENSHOTS") != "1":
        return None
    target = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target
