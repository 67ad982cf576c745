"""gridcnn serve's page in a real browser: headless Chromium, driven by selenium, on a uvicorn server on loopback.

Skipped, with the reason, only where Chromium cannot run (not installed, or it fails to start).
"""

import contextlib
import shutil
import socket
import threading
import time

import numpy as np
import pytest

import gridcnn

pytest.importorskip("fastapi", reason="the serve extra (pip install 'gridcnn[serve]') is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install 'gridcnn[test]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1100,1400"]


@contextlib.contextmanager
def uvicorn_server(app):
    """A real uvicorn server on 127.0.0.1 and a port the OS picks; stopped (and its thread joined) on exit."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start within 30 s"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def chromium(tmp_path):
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("Chromium cannot run here: chromium and chromium-driver are not installed "
                    "(apt-get install chromium chromium-driver; install.sh does this as root)")
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    try:
        # An explicit driver path: selenium never looks for (or downloads) a driver of its own.
        session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    except WebDriverException as exc:
        pytest.skip(f"Chromium cannot run here: the driver did not start ({exc.msg or exc})")
    session.set_page_load_timeout(30)
    yield session
    session.quit()


def test_page_classifies_an_uploaded_digit_and_shows_feature_maps(image_run, chromium, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    from gridcnn.serve import create_app

    digits = load_digits()
    images = np.round(digits.images[-40:] * 255 / 16).astype(np.uint8)
    model = gridcnn.load(image_run)
    predicted = model.predict(images)
    i = int(np.flatnonzero(predicted == digits.target[-40:])[0])  # a digit the model gets right
    path = tmp_path / "digit.png"
    Image.fromarray(images[i]).save(path)

    with uvicorn_server(create_app(image_run)) as url:
        chromium.get(url + "/")
        wait = WebDriverWait(chromium, 30)
        wait.until(lambda d: "classes" in d.find_element(By.ID, "about").text)
        assert "Test accuracy" in chromium.find_element(By.ID, "about").text
        chromium.find_element(By.ID, "file").send_keys(str(path))
        wait.until(lambda d: d.find_element(By.ID, "label").text != "")
        assert chromium.find_element(By.ID, "label").text == str(predicted[i])
        bars = chromium.find_elements(By.CSS_SELECTOR, "#bars .bar")
        assert len(bars) == 5 and bars[0].find_element(By.CLASS_NAME, "name").text == str(predicted[i])

        titles = [h.text for h in chromium.find_elements(By.CSS_SELECTOR, "#maps .stage h3")]
        # The input, then both blocks after their 2x2 pools (8 and 16 filters, the first 8 maps shown).
        import torch

        names = [n for n, _ in model.steps[-1][1].model_.feature_maps(torch.zeros(1, 1, 8, 8))]
        assert titles == ["input: 1 map of 8 × 8", f"{names[0]}: 8 maps of 4 × 4",
                          f"{names[1]}: 16 maps of 2 × 2 (the first 8)"]
        assert len(chromium.find_elements(By.CSS_SELECTOR, "#maps canvas")) == 1 + 8 + 8
        # The input map drawn on the page is the digit: its pixels are not one colour, and they follow the image.
        pixels = chromium.execute_script(
            "const c = document.querySelector('#maps .stage canvas');"
            "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);")
        rgb = np.array(pixels).reshape(8, 8, 4)[..., :3].astype(float)
        luma = rgb @ [0.299, 0.587, 0.114]  # viridis brightens monotonically from low to high values
        assert luma.std() > 0 and np.corrcoef(luma.ravel(), images[i].ravel())[0, 1] > 0.9
        chromium.save_screenshot(str(tmp_path / "page.png"))

        # A stroke drawn on the canvas is shrunk to 8 x 8 in the page, sent, and classified.
        from selenium.webdriver import ActionChains

        canvas = chromium.find_element(By.ID, "canvas")
        ActionChains(chromium).move_to_element_with_offset(canvas, 0, -80).click_and_hold().move_by_offset(
            0, 160).release().perform()
        chromium.find_element(By.ID, "classify-drawing").click()
        wait.until(lambda d: d.find_element(By.ID, "source").text == "for drawing.png")
        assert chromium.find_element(By.ID, "label").text in [str(c) for c in model.steps[-1][1].classes_]
        assert chromium.find_element(By.ID, "error").get_attribute("hidden") is not None
