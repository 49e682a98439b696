"""End to end through the MLflow UI: a person sets @champion in the browser, `langdetect export` follows it.

The registry's alias editor is the promotion path documented for users (registry/models.py points
there), so this drives a real `mlflow server` with headless Chromium, the way a person would click,
and checks that the export picks exactly the version chosen in the browser.

Needs Debian's chromium and chromium-driver: run scripts/install-browser.sh (the CI does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from langdetect_ops.config import CHAMPION_ALIAS, REGISTERED_MODEL
from langdetect_ops.processes import free_port, stop_group, wait_http

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
MISSING = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
INSTALL_HINT = "run scripts/install-browser.sh (Debian's chromium + chromium-driver)"

# Skip before any fixture runs: without a browser there is no point training the smoke model.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not found; {INSTALL_HINT}"),
]

pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[dev]'")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CLOSE_MODAL = '[role="dialog"] button[aria-label="Close"]'


# --- fixtures: the twin version, the tracking server, the browser ----------------------------------


@pytest.fixture
def mlflow_ui(smoke_model, tmp_path):
    """`mlflow server` on the session's sqlite store, on a free loopback port; yields its base URL.

    One web worker and no job runner (shared/NOTES.md: ~250 MB and ~5 s instead of ~3 GB and ~18 s).
    The experiment's artifact_location is an absolute file: URI, which the server reads directly, so
    no --default-artifact-root is needed; cwd is a temp dir so the default ./mlartifacts never lands
    in the repo. 127.0.0.1 is inside the default --allowed-hosts.
    """
    port = free_port()
    log = open(tmp_path / "mlflow-server.log", "w")  # noqa: SIM115 (the server writes to it until teardown)
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            os.environ["MLFLOW_TRACKING_URI"],
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", lambda: proc.poll() is None, 60, what=f"mlflow server (log {log.name})")
        yield url
    finally:
        stop_group(proc, grace_s=15)  # its own session: the group also holds any worker it forked
        log.close()


@pytest.fixture
def browser(tmp_path):
    """Headless Debian Chromium through its own chromedriver (same source package, so versions match).

    Giving both paths explicitly keeps Selenium Manager from trying to download a browser or driver.
    """
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path / "chromium-profile"  # fresh: no cached UI state, no "seen" promo dialogs
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",  # CI containers often have a 64 MB /dev/shm
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# --- the test -------------------------------------------------------------------------------------


def test_alias_set_in_mlflow_ui_drives_export(twin, mlflow_ui, browser, tmp_path, monkeypatch, capsys):
    import bentoml

    import registry.export
    from langdetect_ops.cli import main
    from registry.models import registry_client

    client = registry_client()

    def champion() -> str:
        return str(client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION_ALIAS).version)  # int or str

    # The UI's artifact viewers read files through these endpoints: the store's file: artifacts must be
    # reachable by the server (the run's tokenizer, the logged model's MLmodel).
    api = f"{mlflow_ui}/ajax-api/2.0/mlflow"
    listed = httpx.get(f"{api}/artifacts/list", params={"run_id": twin.run_id}).json()
    assert "tokenizer" in {f["path"] for f in listed.get("files", [])}, listed
    # The sqlite registry does not hand back model_id; the source is the LoggedModel URI models:/m-<id>.
    model_id = twin.model_id or twin.source.removeprefix("models:/")
    mlmodel = httpx.get(f"{api}/logged-models/{model_id}/artifacts/files", params={"artifact_file_path": "MLmodel"})
    assert mlmodel.status_code == 200 and "transformers" in mlmodel.text, mlmodel.text[:500]

    with screenshot_on_failure(browser, tmp_path / "mlflow-ui-failure.png"):
        set_alias_in_ui(browser, mlflow_ui, REGISTERED_MODEL, twin.version, CHAMPION_ALIAS)
        assert _eventually(champion, str(twin.version)) == str(twin.version), "UI edit not in the store"

    # `langdetect export --alias champion`, in-process; the spy keeps the summary the CLI only prints.
    summaries, real_run_export = [], registry.export.run_export

    def spy(**kwargs):
        summaries.append(real_run_export(**kwargs))
        return summaries[-1]

    monkeypatch.setattr(registry.export, "run_export", spy)
    assert main(["export", "--alias", CHAMPION_ALIAS, "--out", str(tmp_path / "export")]) == 0
    printed = capsys.readouterr().out
    assert f"exported {REGISTERED_MODEL} version {twin.version} (@{CHAMPION_ALIAS})" in printed, printed
    (summary,) = summaries
    assert summary.version == str(twin.version) and summary.alias == CHAMPION_ALIAS
    labels = bentoml.models.get(summary.tags["onnx"]).info.labels
    assert labels["mlflow_version"] == str(twin.version) and labels["mlflow_alias"] == CHAMPION_ALIAS


# --- helpers --------------------------------------------------------------------------------------


def set_alias_in_ui(driver, base_url: str, model: str, version, alias: str) -> None:
    """Home -> Model training -> Model registry -> model -> Version N -> Aliases "Add" -> type -> save.

    Selectors are the route hrefs (#/models/...), the button's title and visible texts: what a user
    sees, and what survives restyling (class names are generated CSS-in-JS hashes).
    """
    wait = WebDriverWait(driver, 20)
    click = _clicker(driver, wait)
    driver.get(f"{base_url}/")
    # MLflow 3 opens in "GenAI" mode, whose sidebar has no model registry.
    click((By.XPATH, '//*[@role="button"][normalize-space()="Model training"]'))
    click((By.CSS_SELECTOR, 'nav a[href="#/models"]'))
    click((By.CSS_SELECTOR, f'a[href="#/models/{model}"]'))
    click((By.CSS_SELECTOR, f'a[href="#/models/{model}/versions/{version}"]'))
    wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "h2"), f"Version {version}"))
    click((By.CSS_SELECTOR, 'button[title="Add aliases"], button[title="Edit aliases"]'))  # none yet / some

    dialog = wait.until(
        EC.visibility_of_element_located((By.XPATH, '//*[@role="dialog"][.//h2[contains(., "alias")]]'))
    )
    # A tags-mode select: Enter turns the typed text into an alias chip.
    dialog.find_element(By.CSS_SELECTOR, 'input[role="combobox"]').send_keys(alias, Keys.ENTER)
    click((By.XPATH, '//*[@role="dialog"]//button[normalize-space()="Save aliases"]'))
    wait.until(EC.invisibility_of_element(dialog))
    # The page shows the new alias once the server has stored it.
    wait.until(
        EC.text_to_be_present_in_element(
            (By.XPATH, '//*[@data-testid="descriptions-item"][.//*[normalize-space()="Aliases"]]'), alias
        )
    )


def _clicker(driver, wait):
    """Clicks once the element is clickable; if a modal covers it, closes that modal and retries.

    MLflow shows a "new Model Registry UI" promo modal on the first visit of the registry; it can
    appear a moment after the page, so it is handled when it gets in the way rather than awaited.
    """

    def click(locator, attempts: int = 5) -> None:
        for attempt in range(attempts):
            try:
                wait.until(EC.element_to_be_clickable(locator)).click()
                return
            except (ElementClickInterceptedException, StaleElementReferenceException):
                if attempt == attempts - 1:
                    raise
                for close in driver.find_elements(By.CSS_SELECTOR, CLOSE_MODAL):
                    with contextlib.suppress(Exception):
                        close.click()
                time.sleep(0.5)  # the modal's fade-out still intercepts clicks

    return click


@contextlib.contextmanager
def screenshot_on_failure(driver, path: Path):
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(Exception):
            driver.save_screenshot(str(path))
            exc.add_note(f"browser screenshot: {path} (page {driver.current_url}); server log beside it")
        raise


def _eventually(read, expected, timeout: float = 10, interval: float = 0.25):
    """Reads until it returns `expected` (or time runs out) and returns the last value read.

    The page already shows the alias when set_alias_in_ui returns; this only absorbs any lag
    between the server's answer and what another connection to the sqlite store sees.
    """
    deadline, value = time.monotonic() + timeout, None
    while True:
        with contextlib.suppress(Exception):
            value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(interval)
