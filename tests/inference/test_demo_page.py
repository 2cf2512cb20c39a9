"""The demo page at / driven in a real headless Chromium: type a sentence, click, see a label."""

import os
import shutil

import httpx
import pytest

from ..conftest import near_tie

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def test_type_click_and_see_a_label(server):
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium and chromedriver (.ci/run installs them)")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
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
        api = httpx.post(f"{server}/v1/classify", json={"texts": ["an utterly charming and funny film"]}).json()
        scores = api["predictions"][0]["scores"]
        assert label == api["predictions"][0]["label"] or near_tie(list(scores.values())), (shown.text, api)
    finally:
        driver.quit()
