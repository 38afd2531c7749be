"""End to end: the studio page in headless Chromium (Debian's chromium + chromium-driver, driven by selenium)
against a tiny StyleGAN2 G with random weights: change the seed, drag a heatmap centre, save, and redraw the
saved settings through the CLI. scripts/setup_env.sh installs the browser; without one these tests skip."""

import json
import os
import shlex
import shutil
import time

import numpy as np
import pytest
from studio_networks import decode_data_url, png_pixels, tiny_sel_generator
from tools_networks import tiny_generator

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from styleforge.cli import main  # noqa: E402
from styleforge.inference.render import render  # noqa: E402
from styleforge.inference.settings import ImageSettings, parse_settings  # noqa: E402
from styleforge.networks.persistence import save_network  # noqa: E402
from styleforge.studio.server import Studio, create_app, running_in_thread  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "/usr/lib/chromium/chromedriver")


def find_browser() -> tuple[str, str] | None:
    """(browser, driver) executables, or None."""
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    driver = next((shutil.which(d) for d in DRIVERS if shutil.which(d)), None)
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    found = find_browser()
    if found is None:
        pytest.skip("no Chromium with chromedriver found: run scripts/setup_env.sh as root, or "
                    "apt-get install chromium chromium-driver")
    options = Options()
    options.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,900", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=found[1]), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def page_state(driver) -> dict:
    return driver.execute_script(
        "const s = Studio.state; return {renders: s.renders, busy: s.inFlight || s.dirty, error: s.lastError,"
        " image: document.getElementById('image').src, heatmaps: s.heatmaps, save: s.lastSave || null};")


def wait_for(driver, condition, what: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page_state(driver)
        if condition(state):
            return state
        time.sleep(0.02)
    raise AssertionError(f"the page did not {what} within {timeout} s; its state: {page_state(driver)}")


def settle(driver, after_renders: int) -> dict:
    """Waits until the page has finished a render after `after_renders` and has nothing left to send."""
    return wait_for(driver, lambda s: s["renders"] > after_renders and not s["busy"], "finish rendering")


def open_studio(driver, url: str) -> dict:
    driver.get(url)
    state = settle(driver, 0)
    assert state["error"] is None, state["error"]
    return state


def save_and_redraw(driver, studio: Studio, tmp_path) -> np.ndarray:
    """Clicks Save, runs the saved command, checks it redraws the saved pixels and returns them."""
    driver.find_element(By.ID, "save").click()
    saved = wait_for(driver, lambda s: s["save"] is not None, "save")["save"]
    assert driver.find_element(By.ID, "saved-command").text == saved["command"]
    argv = shlex.split(json.loads(open(saved["settings_file"]).read())["command"])
    argv[argv.index("--outdir") + 1] = str(tmp_path / "redrawn")
    assert main(argv[1:]) == 0
    redrawn = png_pixels(str(tmp_path / "redrawn" / os.path.basename(saved["image_file"])))
    assert np.array_equal(redrawn, png_pixels(saved["image_file"]))
    return redrawn


def test_change_seed_save_and_redraw_through_the_cli(browser, tmp_path):
    network = tmp_path / "G.safetensors"
    save_network(tiny_generator(), network)
    studio = Studio(network, outdir=tmp_path / "saved")
    with running_in_thread(create_app(studio)) as url:
        first = open_studio(browser, url)
        assert "generator/stylegan2" in browser.find_element(By.ID, "network-line").text
        assert not browser.find_element(By.ID, "heatmap-controls").is_displayed()  # not an EqGAN-SA network

        seed = browser.find_element(By.ID, "seed")
        seed.clear()
        seed.send_keys("123")
        new_seed = lambda s: browser.execute_script("return Studio.settingsFromControls().seed") == 123  # noqa: E731
        state = wait_for(browser, lambda s: s["renders"] > first["renders"] and not s["busy"] and new_seed(s),
                         "render seed 123")
        shown = decode_data_url(state["image"])
        assert not np.array_equal(shown, decode_data_url(first["image"]))
        assert np.array_equal(shown, render(studio.G, ImageSettings(seed=123)).image)

        # Truncation slider and style mixing change the image too, and all of it is saved.
        browser.execute_script("const p = document.getElementById('psi'); p.value = 0.5;"
                               "p.dispatchEvent(new Event('input', {bubbles: true}));")
        browser.find_element(By.ID, "mix-on").click()
        state = settle(browser, state["renders"])
        settings = browser.execute_script("return Studio.settingsFromControls()")
        assert settings["psi"] == 0.5 and settings["mix"] == {"seed": 1, "layers": [0, 3]}
        mixed = decode_data_url(state["image"])
        assert np.array_equal(mixed, render(studio.G, parse_settings(settings, studio.info)).image)

        assert np.array_equal(save_and_redraw(browser, studio, tmp_path), mixed)
        browser.save_screenshot(str(tmp_path / "studio.png"))


def test_centre_dragging_logic_of_the_page(browser, tmp_path):
    """The page's coordinate mapping and drag rule, on any network (the drag itself: the EqGAN-SA test)."""
    network = tmp_path / "G.safetensors"
    save_network(tiny_generator(), network)
    with running_in_thread(create_app(Studio(network))) as url:
        open_studio(browser, url)
        result = browser.execute_script("""
            const R = 16, h = {centres: [[[0, 0]], [[0.2, 0.1], [-0.2, -0.1]], [[0.5, 0.5], [0, 0.9], [0, 0], [-1, 1]]],
                               sigmas: [[0.5], [0.3, 0.3], [0.2, 0.2, 0.2, 0.2]]};
            return {
              edges: [Studio.centreToFraction(-1, R), Studio.centreToFraction(1, R)],
              roundTrip: Studio.fractionToCentre(Studio.centreToFraction(0.3, R), R),
              clamped: Studio.fractionToCentre(1.2, R),
              object: Studio.moveCentre(h, 0, 0, 0.1, -0.2),
              part: Studio.moveCentre(h, 2, 1, 0.4, 0.4),
              original: h};""")
    assert result["edges"] == pytest.approx([0.5 / 16, 15.5 / 16])  # -1 and 1 are the first and last pixel centres
    assert result["roundTrip"] == pytest.approx(0.3) and result["clamped"] == 1
    moved, part = result["object"]["centres"], result["part"]["centres"]
    assert moved[0] == [[0.1, -0.2]]  # the object...
    assert moved[1] == [pytest.approx([0.3, -0.1]), pytest.approx([-0.1, -0.3])]  # ...carries its parts
    assert moved[2][3] == [pytest.approx(-0.9), pytest.approx(0.8)]
    assert part[2][1] == [0.4, 0.4] and part[0] == [[0, 0]] and part[1] == result["original"]["centres"][1]


def test_a_network_that_cannot_be_loaded_shows_the_error_on_the_page(browser, tmp_path):
    missing = tmp_path / "missing.safetensors"
    with running_in_thread(create_app(Studio(missing))) as url:
        browser.get(url)
        wait_for(browser, lambda s: s["renders"] > 0, "report the error")
        error = browser.find_element(By.ID, "error")
        assert error.is_displayed() and f"{missing}: no such file" in error.text
        assert browser.find_element(By.ID, "reload").is_displayed()
        assert not browser.find_element(By.ID, "workspace").is_displayed()
        # A bad value typed into the page is shown as the server's message.
        save_network(tiny_generator(), missing)
        browser.find_element(By.ID, "reload").click()
        wait_for(browser, lambda s: s["renders"] > 0 and s["error"] is None and s["image"], "reload")
        seed = browser.find_element(By.ID, "seed")
        seed.clear()
        seed.send_keys("-5")
        wait_for(browser, lambda s: s["error"] is not None and not s["busy"], "show the error")
        assert "seed -5: out of range" in browser.find_element(By.ID, "error").text


def test_dragging_a_heatmap_centre_moves_the_image_and_is_saved(browser, tmp_path):
    network = tmp_path / "G_sa.safetensors"
    save_network(tiny_sel_generator(), network)
    studio = Studio(network, outdir=tmp_path / "saved")
    assert studio.info.spatial
    with running_in_thread(create_app(studio)) as url:
        before = open_studio(browser, url)
        assert browser.find_element(By.ID, "heatmap-controls").is_displayed()
        dot = browser.find_element(By.CSS_SELECTOR, "#overlay circle.level-1")
        stage = browser.find_element(By.ID, "stage").rect
        # Drag the object's centre a third of the image to the right and down (clamped into the image).
        ActionChains(browser).click_and_hold(dot).move_by_offset(stage["width"] // 3, stage["height"] // 3) \
            .release().perform()
        after = settle(browser, before["renders"])
        y0, x0 = before["heatmaps"]["centres"][0][0]
        y1, x1 = after["heatmaps"]["centres"][0][0]
        assert x1 > x0 + 0.3 or x1 == 1.0
        assert y1 > y0 + 0.3 or y1 == 1.0
        shown = decode_data_url(after["image"])
        assert not np.array_equal(shown, decode_data_url(before["image"]))
        settings = browser.execute_script("return Studio.settingsFromControls()")
        assert settings["heatmaps"] == after["heatmaps"]
        assert np.array_equal(shown, render(studio.G, parse_settings(settings, studio.info)).image)
        assert np.array_equal(save_and_redraw(browser, studio, tmp_path), shown)
