"""gridcnn serve's page in a real browser: headless Chromium, driven by selenium, on a uvicorn server on loopback.

Skipped, with the reason, only where Chromium cannot run (not installed, or it fails to start). Chromium's fake
media devices stand in for the microphone (a beeping tone) and the camera (a moving test pattern). Each test saves
screenshots (desktop and phone width) into its tmp folder, and the latest ones stay in ``$GRIDCNN_SCREENSHOTS``
(default ``/tmp/gridcnn-screenshots``) for a person to look at.
"""

import contextlib
import os
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
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1100,1400",
                  # the microphone and camera tests: fake devices, permission granted without a prompt
                  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
PHONE_WIDTH = 380


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


@pytest.fixture(scope="session")
def screenshots():
    """The folder that keeps the latest screenshots for a person to look at (each run overwrites its files)."""
    import tempfile
    from pathlib import Path

    folder = Path(os.environ.get("GRIDCNN_SCREENSHOTS") or Path(tempfile.gettempdir()) / "gridcnn-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(driver, name, tmp_path, screenshots):
    """Screenshots of the whole page at desktop and at phone width (the window is set back after), and whether
    the page fits the phone's width without scrolling sideways."""
    fits = True
    for width, suffix in ((1100, "desktop"), (PHONE_WIDTH, "phone")):
        driver.set_window_size(width, 1400)
        time.sleep(0.3)  # let the layout settle
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(height + 140, 600), 4000))
        time.sleep(0.2)
        if suffix == "phone":
            fits = driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        for folder in (tmp_path, screenshots):
            driver.save_screenshot(str(folder / f"{name}-{suffix}.png"))
    driver.set_window_size(1100, 1400)
    return fits


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


def heat_pixels(driver, selector="#view .heat"):
    """The heatmap canvas drawn on the page as an (h, w, 4) array of RGBA values."""
    pixels = driver.execute_script(
        f"const c = document.querySelector('{selector}'); if (!c) return null;"
        "return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];")
    if pixels is None:
        return None
    w, h, data = pixels
    return np.array(data).reshape(h, w, 4)


def test_page_shows_the_upload_where_the_network_looked_and_the_feature_maps(image_run, chromium, tmp_path,
                                                                              screenshots):
    from PIL import Image
    from sklearn.datasets import load_digits

    from gridcnn.backbone.explain import grad_cam
    from gridcnn.serve import create_app

    digits = load_digits()
    images = np.round(digits.images[-40:] * 255 / 16).astype(np.uint8)
    model = gridcnn.load(image_run)
    est = model.steps[-1][1]
    predicted = model.predict(images)
    i = int(np.flatnonzero(predicted == digits.target[-40:])[0])  # a digit the model gets right
    path = tmp_path / "digit.png"
    Image.fromarray(images[i]).save(path)  # 8 x 8: this model was trained without resizing

    with uvicorn_server(create_app(image_run)) as url:
        chromium.get(url + "/")
        wait = WebDriverWait(chromium, 30)
        wait.until(lambda d: "classes" in d.find_element(By.ID, "about").text)
        assert chromium.find_element(By.ID, "name").text == "run" and chromium.title == "run · gridcnn"
        assert chromium.find_element(By.ID, "accuracy").text.startswith("Test accuracy")
        assert "10 classes: 0, 1, 2" in chromium.find_element(By.ID, "about").text
        # A grayscale model of 8 x 8 pictures: the drawing canvas and the camera are offered, no microphone.
        assert [chromium.find_element(By.ID, p).is_displayed() for p in ("drop", "draw", "camera", "record")] == [
            True, True, True, False]
        chromium.find_element(By.ID, "file").send_keys(str(path))
        wait.until(lambda d: d.find_element(By.ID, "label").text != "")
        assert chromium.find_element(By.ID, "label").text == str(predicted[i])
        bars = chromium.find_elements(By.CSS_SELECTOR, "#bars .bar")
        assert len(bars) == 10 and bars[0].find_element(By.CLASS_NAME, "name").text == str(predicted[i])
        # The top class stands out: its own colour and weight, unlike every other bar.
        fill = [b.find_element(By.CLASS_NAME, "fill").value_of_css_property("background-color") for b in bars]
        assert fill[0] not in fill[1:] and len(set(fill[1:])) == 1
        assert bars[0].value_of_css_property("font-weight") == "700" != bars[1].value_of_css_property("font-weight")

        # The upload is shown, and over it the heatmap the API computes for the predicted class.
        picture = chromium.find_element(By.CSS_SELECTOR, "#view img")
        assert picture.size["width"] >= 200 and chromium.execute_script("return arguments[0].naturalWidth",
                                                                        picture) == 8
        heat = heat_pixels(chromium)
        grid = model.steps[0][1].transform(images[i:i + 1])
        expected = grad_cam(est.model_, grid).heatmaps[0]
        assert heat.shape[:2] == (8, 8)
        np.testing.assert_allclose(heat[..., 3] / 255, 0.3 + 0.45 * expected, atol=0.02)  # alpha follows the heat
        why = chromium.find_element(By.ID, "why").text
        assert f"speaks for “{predicted[i]}”" in why and "Grad-CAM on block2" in why
        assert len(chromium.find_elements(By.CSS_SELECTOR, "#view img")) == 2  # the picture, and with the heatmap

        # Feature maps keep their titles.
        titles = [h.text for h in chromium.find_elements(By.CSS_SELECTOR, "#maps .stage h3")]
        import torch

        names = [n for n, _ in est.model_.feature_maps(torch.zeros(1, 1, 8, 8))]
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
        assert shoot(chromium, "image-upload", tmp_path, screenshots), "the page scrolls sideways at phone width"

        # A click on another class explains that class instead.
        other = bars[1].find_element(By.CLASS_NAME, "name").text
        bars[1].click()
        wait.until(lambda d: f"for “{other}”" in d.execute_script(  # a script: the view is redrawn meanwhile
            "return document.querySelector('#view figure:last-child').textContent"))
        assert "explained" in chromium.find_elements(By.CSS_SELECTOR, "#bars .bar")[1].get_attribute("class")
        expected = grad_cam(est.model_, grid, target=list(est.classes_.astype(str)).index(other)).heatmaps[0]
        np.testing.assert_allclose(heat_pixels(chromium)[..., 3] / 255, 0.3 + 0.45 * expected, atol=0.02)

        # A stroke drawn on the canvas is shrunk to 8 x 8 in the page, sent, and classified.
        from selenium.webdriver import ActionChains

        canvas = chromium.find_element(By.ID, "canvas")
        ActionChains(chromium).move_to_element_with_offset(canvas, 0, -80).click_and_hold().move_by_offset(
            0, 160).release().perform()
        chromium.find_element(By.ID, "classify-drawing").click()
        wait.until(lambda d: d.find_element(By.ID, "source").text == "(drawing.png)")
        assert chromium.find_element(By.ID, "label").text in [str(c) for c in est.classes_]

        # A snapshot of the (fake) camera is classified the same way.
        chromium.find_element(By.ID, "camera-start").click()
        wait.until(lambda d: d.find_element(By.ID, "camera-snap").is_enabled())
        chromium.find_element(By.ID, "camera-snap").click()
        wait.until(lambda d: d.find_element(By.ID, "source").text == "(camera.png)")
        assert chromium.find_element(By.ID, "error").get_attribute("hidden") is not None
        shoot(chromium, "image-camera", tmp_path, screenshots)
        # The browser found the icon: no 404 in the server's answers to the page.
        assert chromium.execute_script("return fetch('/favicon.ico').then(r => r.status)") == 200


def test_page_records_the_microphone_and_shows_the_sound(audio_model, chromium, tmp_path, screenshots):
    from gridcnn.serve import create_app

    folder, paths, labels = audio_model
    model = gridcnn.load(folder)
    with uvicorn_server(create_app(folder)) as url:
        chromium.get(url + "/")
        wait = WebDriverWait(chromium, 30)
        wait.until(lambda d: "classes" in d.find_element(By.ID, "about").text)
        assert [chromium.find_element(By.ID, p).is_displayed() for p in ("drop", "record", "draw", "camera")] == [
            True, True, False, False]

        # An uploaded clip: a player, its waveform and the spectrogram with where the network looked.
        chromium.find_element(By.ID, "file").send_keys(paths[0])
        wait.until(lambda d: d.find_element(By.ID, "label").text != "")
        assert chromium.find_element(By.ID, "label").text == model.predict(paths[:1])[0]
        assert chromium.find_element(By.CSS_SELECTOR, "#view audio").get_attribute("src").startswith("blob:")
        assert chromium.find_element(By.CSS_SELECTOR, "#view canvas.wave").is_displayed()
        spectrogram = chromium.find_element(By.CSS_SELECTOR, "#view canvas.spectrogram")
        grid = model.steps[0][1].transform(paths[:1])[0, 0]  # (time frames, mel bands)
        # Drawn with time across: the canvas is as wide as the clip has frames, as tall as it has bands.
        assert chromium.execute_script("return [arguments[0].width, arguments[0].height]", spectrogram) == [
            grid.shape[0], grid.shape[1]]
        assert heat_pixels(chromium).shape[:2] == (grid.shape[1], grid.shape[0])
        assert shoot(chromium, "sound-upload", tmp_path, screenshots), "the page scrolls sideways at phone width"

        # A recording from the (fake) microphone goes up as a WAV file and is classified.
        chromium.find_element(By.ID, "record-start").click()
        wait.until(lambda d: d.find_element(By.ID, "record-status").text == "Recording…")
        time.sleep(1.0)
        chromium.find_element(By.ID, "record-stop").click()
        wait.until(lambda d: d.find_element(By.ID, "source").text == "(recording.wav)")
        assert chromium.find_element(By.ID, "record-status").text.startswith("Recorded ")
        assert chromium.find_element(By.ID, "label").text in labels
        assert chromium.find_element(By.ID, "error").get_attribute("hidden") is not None
        assert heat_pixels(chromium) is not None
        shoot(chromium, "sound-recording", tmp_path, screenshots)


@pytest.mark.slow  # MiniLM's token table
def test_page_weighs_each_token_of_a_sentence(text_model, chromium, tmp_path, screenshots):
    from gridcnn.serve import create_app

    folder, _, _ = text_model
    with uvicorn_server(create_app(folder)) as url:
        chromium.get(url + "/")
        wait = WebDriverWait(chromium, 30)
        wait.until(lambda d: "classes" in d.find_element(By.ID, "about").text)
        assert [chromium.find_element(By.ID, p).is_displayed() for p in ("write", "drop", "record", "draw")] == [
            True, False, False, False]
        chromium.find_element(By.ID, "sentence").send_keys("the film was superb and funny")
        chromium.find_element(By.ID, "classify-text").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#view .token"))
        assert chromium.find_element(By.ID, "label").text == "pos"
        tokens = chromium.find_elements(By.CSS_SELECTOR, "#view .token")
        words = [t.text for t in tokens]
        assert words[0] == "[CLS]" and "superb" in words and words[-1] == "[SEP]"
        weights = [float(t.get_attribute("title").split()[-1]) for t in tokens]
        assert words[int(np.argmax(weights))] in ("superb", "funny")
        assert shoot(chromium, "text", tmp_path, screenshots), "the page scrolls sideways at phone width"
