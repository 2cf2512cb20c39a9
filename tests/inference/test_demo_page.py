"""The demo page at / driven in a real headless Chromium: type a sentence, click, see a label."""

import os
import shutil

import pytest

from ..conftest import near_tie
from .conftest import http

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def chrome():
    """A headless Chromium driven by selenium (skipped without one outside CI)."""
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium and chromedriver (.ci/run installs them)")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_type_click_and_see_a_label(server):
    driver = chrome()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        driver.get(server + "/")
        box = driver.find_element(By.ID, "text")
        box.clear()
        box.send_keys("an utterly charming and funny film")
        driver.find_element(By.ID, "classify").click()
        shown = WebDriverWait(driver, 30).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#result .prediction")))
        label = shown.text.split(" ")[0]
        assert label in ("positive", "negative")
        assert "an utterly charming and funny film" in shown.text
        # The page shows what the API answers for that sentence (either label where the two are a tie).
        api = http.post(f"{server}/v1/classify", json={"texts": ["an utterly charming and funny film"]}).json()
        scores = api["predictions"][0]["scores"]
        assert label == api["predictions"][0]["label"] or near_tie(list(scores.values())), (shown.text, api)
    finally:
        driver.quit()


def test_a_pair_model_gets_two_boxes_and_its_label_names(rte_run):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from .conftest import start

    driver = chrome()
    proc, url, _ = start(rte_run / "model")
    try:
        driver.get(url + "/")
        second = WebDriverWait(driver, 30).until(EC.visibility_of_element_located((By.ID, "text2")))
        assert "RTE" in driver.find_element(By.ID, "title").text
        assert driver.find_element(By.ID, "labels").text == "Labels: entailment, not_entailment"
        driver.find_element(By.ID, "text").send_keys("A man is sleeping in his bed.")
        second.send_keys("A person rests.")
        driver.find_element(By.ID, "classify").click()
        shown = WebDriverWait(driver, 30).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#result .prediction")))
        assert shown.text.split(" ")[0] in ("entailment", "not_entailment")
        assert "A man is sleeping in his bed. / A person rests." in shown.text
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(timeout=30)
