"""The leaderboard page in a real browser: headless Debian chromium driven by selenium, network off.

The page is built from the committed fixture tree (4 exact cells, every built-in entry) into a
``leaderboard/`` folder beside a copy of its ``results/``, as in the repository. :func:`check_page`
holds every check; the last tests break a copy of the page and require it to fail. Screenshots
(desktop 1400 px, phone 400 px) are saved under ``build/test-artifacts/``.

Run as a script, it photographs a built page (the rankings, with their cost, at 1400 and 400 px,
and the top, a family and a cell) into a folder, as in docs/screenshots/::

    .venv/bin/python tests/test_page_browser.py leaderboard/index.html docs/screenshots
"""
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from snrbench.report import leaderboard, scoring
from snrbench import store

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra (make test installs it)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "fixture"
ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "test-artifacts"
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("site")
    shutil.copytree(FIXTURE / "results", base / "results")
    leaderboard.build(base / "results", base / "leaderboard")
    return base


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and DRIVER.exists()):
        pytest.fail("Debian chromium and chromium-driver are needed (make test installs them: apt-get install "
                    "chromium chromium-driver)")
    driver = _driver()
    yield driver
    driver.quit()


def _driver():
    """Headless chromium with every request outside file:// blocked and the network emulated offline."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--allow-file-access-from-files", "--host-resolver-rules=MAP * ~NOTFOUND", "--no-proxy-server"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(DRIVER)), options=opts)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", dict(offline=True, latency=0, downloadThroughput=0,
                                                                    uploadThroughput=0))
    return driver


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _load(driver, path: Path, width: int = 1400) -> list[str]:
    driver.set_window_size(width, 1000)
    driver.get_log("performance")  # drop what earlier pages asked for
    driver.get(path.as_uri())
    driver.execute_script("return document.readyState")
    return _requests(driver)


def check_page(driver, path: Path, scores) -> None:
    """Every check the page must pass; raises AssertionError naming the first that fails."""
    requests = _load(driver, path)
    outside = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert not outside, f"requests leaving file://: {outside}"
    # every table the scores call for is there, with one row per entry
    full = scores[scores.budget == scores.budget.max()]
    for tier, g in full.groupby("access"):
        rows = driver.find_elements(By.CSS_SELECTOR, f"#rank-{tier} table tbody tr")
        assert len(rows) == g.predictor.nunique(), f"ranking of tier {tier}: {len(rows)} rows"
        for family, h in g.groupby("family"):
            rows = driver.find_elements(By.CSS_SELECTOR, f'#family-{family} div[data-tier="{tier}"] table tbody tr')
            assert len(rows) == h.predictor.nunique(), f"{family} {tier} table: {len(rows)} rows"
    for table in driver.find_elements(By.TAG_NAME, "table"):
        assert table.find_elements(By.TAG_NAME, "caption"), "a table without a caption"
        assert table.find_elements(By.CSS_SELECTOR, "thead th[scope=col]"), "a table without column headers"
    images = driver.find_elements(By.TAG_NAME, "img")
    assert len(images) == 2 * full.family.nunique() + 1 + full.access.nunique(), f"{len(images)} figures"
    # the rankings show the numbers of rankings.csv, and a tie is marked in words
    ranked = pd.read_csv(path.parent / "data" / "rankings.csv")
    for r in ranked.itertuples(index=False):
        row = driver.find_element(By.XPATH, f'//section[@id="rank-{r.tier}"]//tbody/tr[th[normalize-space()="{r.entry}"]]')
        text = row.text
        assert f"{r.statistic:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" in text, f"{r.tier} {r.entry}: {text}"
        assert f"{r.rank_low}–{r.rank_high}" in text and (("tied" in text) == r.tied), f"{r.tier} {r.entry}: {text}"
    for tier in full.access.unique():  # the cost sits beside the tracked fraction in every ranking
        heads = [h.text for h in driver.find_elements(By.CSS_SELECTOR, f"#rank-{tier} table thead th")]
        j = heads.index("mean tracked fraction [95%]")
        assert heads[j + 1:j + 3] == ["median chain-sweeps", "median seconds"], f"ranking of tier {tier}: {heads}"
    assert driver.find_elements(By.CSS_SELECTOR, "#rankings p.how"), "no paragraph on reading the intervals"
    # no caption runs out of its table's scrolling box (it would be cut off at the box's edge)
    cut = driver.execute_script("return Array.from(document.querySelectorAll('.scroll caption')).filter(function(c){"
                                "var b = c.closest('.scroll').getBoundingClientRect(), r = c.getBoundingClientRect();"
                                "return r.width > 0 && r.right > b.right + 1;}).map(function(c){return c.textContent;})")
    assert not cut, f"captions cut at the edge of their box: {cut[:3]}"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#rankings p.robust")) == full.access.nunique(), "robustness lines"
    for img in images:
        driver.execute_script("arguments[0].scrollIntoView()", img)
        ok = driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
        assert ok, f"figure {img.get_attribute('src')} did not render"
        assert len(img.get_attribute("alt")) > 30, f"figure {img.get_attribute('src')}: no alt text"
    assert driver.find_elements(By.CSS_SELECTOR, "details.cell svg.curve polyline"), "no per-cell curves"
    assert driver.find_element(By.ID, "filters").is_displayed(), "the filter form did not appear (script failed?)"


def test_page_renders_offline_with_every_table_and_figure(site, browser):
    scores = store.read_table(site / "results", scoring.SCORES_REL).to_pandas()
    check_page(browser, site / "leaderboard" / "index.html", scores)


def _column(driver, table, j: int) -> list[float]:
    cells = table.find_elements(By.CSS_SELECTOR, f"tbody tr > :nth-child({j + 1})")
    return [float(c.get_attribute("data-v")) for c in cells]


def test_sorting_by_a_column_orders_the_rows(site, browser):
    _load(browser, site / "leaderboard" / "index.html")
    table = browser.find_element(By.CSS_SELECTOR, "#family-exact-rbm div[data-tier=sampler-only] table")
    heads = [h.text for h in table.find_elements(By.CSS_SELECTOR, "thead th")]
    j = next(i for i, h in enumerate(heads) if h.startswith("median max err"))
    buttons = lambda: table.find_elements(By.CSS_SELECTOR, "thead th button")  # noqa: E731
    buttons()[0].click()  # by entry name: an order that is not the error order
    names = [c.text for c in table.find_elements(By.CSS_SELECTOR, "tbody tr > th")]
    assert names == sorted(names, key=str.lower)
    before = _column(browser, table, j)
    assert len(before) >= 3 and before != sorted(before)
    buttons()[j].click()
    assert _column(browser, table, j) == sorted(before)
    assert table.find_elements(By.CSS_SELECTOR, "thead th")[j].get_attribute("aria-sort") == "ascending"
    buttons()[j].click()
    assert _column(browser, table, j) == sorted(before, reverse=True)


def test_filter_by_tier_and_family(site, browser):
    _load(browser, site / "leaderboard" / "index.html")
    Select(browser.find_element(By.ID, "filter-tier")).select_by_value("white-box")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-tier]")
    shown = {r.get_attribute("data-tier") for r in rows if r.is_displayed()}
    assert shown == {"white-box"}, shown
    assert not browser.find_element(By.ID, "rank-sampler-only").is_displayed()
    assert browser.find_element(By.ID, "rank-white-box").is_displayed()
    Select(browser.find_element(By.ID, "filter-tier")).select_by_value("")
    assert browser.find_element(By.ID, "rank-sampler-only").is_displayed()
    Select(browser.find_element(By.ID, "filter-family")).select_by_value("exact-rbm")
    assert browser.find_element(By.ID, "family-exact-rbm").is_displayed()


def test_screenshots_desktop_and_phone(site, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = site / "leaderboard" / "index.html"
    for width, name in ((1400, "desktop"), (400, "phone")):
        _load(browser, page, width)
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width + 1, \
            f"{name}: the page overflows sideways"
        browser.save_screenshot(str(ARTIFACTS / f"page-{name}-top.png"))
        browser.execute_script("document.getElementById('family-exact-rbm').scrollIntoView()")
        browser.save_screenshot(str(ARTIFACTS / f"page-{name}-family.png"))
        cell = browser.find_element(By.CSS_SELECTOR, "#family-exact-rbm details.cells")
        browser.execute_script("arguments[0].open = true; arguments[0].querySelector('details.cell').open = true;"
                               "arguments[0].querySelector('details.cell').scrollIntoView()", cell)
        browser.save_screenshot(str(ARTIFACTS / f"page-{name}-cell.png"))
        assert (ARTIFACTS / f"page-{name}-cell.png").stat().st_size > 10_000


def _left(driver, element) -> float:
    return driver.execute_script("return arguments[0].getBoundingClientRect().left", element)


def test_first_column_stays_when_a_ranking_scrolls_right(site, browser):
    _load(browser, site / "leaderboard" / "index.html", 700)
    box = browser.find_element(By.CSS_SELECTOR, "#rank-sampler-only .scroll")
    browser.execute_script("arguments[0].scrollIntoView()", box)
    assert browser.execute_script("return arguments[0].scrollWidth - arguments[0].clientWidth", box) > 100, \
        "the ranking does not scroll sideways at 700 px: nothing to check"
    first = box.find_element(By.CSS_SELECTOR, "tbody tr:first-child > th")
    second = box.find_element(By.CSS_SELECTOR, "tbody tr:first-child > td")
    head = box.find_element(By.CSS_SELECTOR, "thead th:first-child")
    x0, y0, h0 = _left(browser, first), _left(browser, second), _left(browser, head)
    browser.execute_script("arguments[0].scrollLeft = arguments[0].scrollWidth", box)
    assert abs(_left(browser, first) - x0) < 1 and abs(_left(browser, head) - h0) < 1, "the first column moved"
    assert _left(browser, second) < y0 - 100, "the table did not scroll"
    # the entry's name is drawn above the scrolled cells, not under them
    hit = browser.execute_script("var r = arguments[0].getBoundingClientRect();"
                                 "return document.elementFromPoint(r.left + 5, r.top + r.height / 2)", first)
    assert browser.execute_script("return arguments[0].contains(arguments[1])", first, hit), "covered first column"


def test_an_empty_filter_result_says_so(site, browser):
    _load(browser, site / "leaderboard" / "index.html")
    ladder = browser.find_element(By.CSS_SELECTOR, "#ladder table")
    assert ladder.is_displayed() and not browser.find_elements(By.CSS_SELECTOR, "#ladder p.nomatch:not([hidden])")
    Select(browser.find_element(By.ID, "filter-tier")).select_by_value("white-box")  # the ladder has no white-box row
    assert not ladder.is_displayed(), "a header-only table is shown"
    msg = browser.find_element(By.CSS_SELECTOR, "#ladder p.nomatch")
    assert msg.is_displayed() and msg.text.startswith("No entry matches the filter (tier: white-box)"), msg.text
    Select(browser.find_element(By.ID, "filter-tier")).select_by_value("")
    assert ladder.is_displayed() and not msg.is_displayed()


def test_headings_are_not_under_the_sticky_filter_bar(site, browser):
    _load(browser, site / "leaderboard" / "index.html")
    bar = browser.find_element(By.ID, "filters")
    for target in ("rankings", "ladder", "family-exact-rbm", "entries"):
        browser.find_element(By.CSS_SELECTOR, f'nav a[href="#{target}"]').click()
        heading = browser.find_element(By.CSS_SELECTOR, f"#{target} h2")
        bottom = browser.execute_script("return arguments[0].getBoundingClientRect().bottom", bar)
        top = browser.execute_script("return arguments[0].getBoundingClientRect().top", heading)
        assert top >= bottom - 1, f"#{target}: heading at {top}, filter bar down to {bottom}"


def test_phone_layout_hides_secondary_columns_behind_a_toggle(site, browser):
    _load(browser, site / "leaderboard" / "index.html", 400)
    table = browser.find_element(By.CSS_SELECTOR, "#rank-sampler-only table")
    browser.execute_script("arguments[0].scrollIntoView()", table)
    shown = lambda: [h.text for h in table.find_elements(By.CSS_SELECTOR, "thead th") if h.is_displayed()]  # noqa: E731
    first = shown()
    assert first[:2] == ["entry", "rank"] and "median chain-sweeps" in first and "median seconds" in first, first
    assert "Borda" not in first and "median CPU s" not in first, first
    button = browser.find_element(By.CSS_SELECTOR, "#rank-sampler-only button.coltoggle")
    assert button.is_displayed() and button.get_attribute("aria-expanded") == "false"
    button.click()
    every = shown()
    assert len(every) == len(table.find_elements(By.CSS_SELECTOR, "thead th")) > len(first) and "Borda" in every
    assert button.get_attribute("aria-expanded") == "true"
    button.click()
    assert shown() == first
    _load(browser, site / "leaderboard" / "index.html", 1400)  # on a desktop every column shows, no button
    table = browser.find_element(By.CSS_SELECTOR, "#rank-sampler-only table")
    assert all(h.is_displayed() for h in table.find_elements(By.CSS_SELECTOR, "thead th"))
    assert not browser.find_element(By.CSS_SELECTOR, "#rank-sampler-only button.coltoggle").is_displayed()


def save_screenshots(driver, index: Path, folder: Path) -> list[Path]:
    """Screenshots of the built page ``index`` at 1400 and 400 px: the top, the rankings (scrolled to
    the largest ranking, so its cost columns show), the first family and one of its cells."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for width, name in ((1400, "desktop"), (400, "phone")):
        driver.set_window_size(width, 1000)
        driver.get(index.resolve().as_uri())
        shots = [("top", "window.scrollTo(0, 0)"),
                 ("rankings", "document.getElementById('rank-sampler-only').scrollIntoView()"),
                 ("family", "document.querySelector('section[data-family]').scrollIntoView()"),
                 ("cell", "var d = document.querySelector('details.cells'); d.open = true;"
                          "d.querySelector('details.cell').open = true; d.querySelector('details.cell').scrollIntoView()")]
        for view, script in shots:
            driver.execute_script(script)
            written.append(folder / f"{name}-{view}.png")
            driver.save_screenshot(str(written[-1]))
    return written


def test_page_works_without_javascript(site):
    text = (site / "leaderboard" / "index.html").read_text()
    assert '<meta name="viewport"' in text and '<form id="filters" class="filters" hidden' in text
    assert text.count("<table") >= 5 and "<tbody>\n<tr" in text  # the rows are in the HTML, not made by script


@pytest.mark.parametrize("breakage", ["table removed", "external script"])
def test_a_broken_page_fails_the_checks(site, browser, tmp_path, breakage):
    scores = store.read_table(site / "results", scoring.SCORES_REL).to_pandas()
    shutil.copytree(site / "leaderboard", tmp_path / "leaderboard")
    page = tmp_path / "leaderboard" / "index.html"
    text = page.read_text()
    if breakage == "table removed":
        start = text.index('<section data-tier="white-box" id="rank-white-box">')
        a = text.index('<div class="scroll">', start)
        b = text.index("</table></div>", a) + len("</table></div>")
        text = text[:a] + text[b:]
    else:
        text = text.replace("</head>", '<script src="https://cdn.example.org/tracker.js"></script></head>')
    page.write_text(text)
    with pytest.raises(AssertionError, match="ranking of tier white-box|requests leaving file"):
        check_page(browser, page, scores)


if __name__ == "__main__":
    import sys

    browser_ = _driver()
    try:
        for path in save_screenshots(browser_, Path(sys.argv[1]), Path(sys.argv[2])):
            print(f"wrote {path}")
    finally:
        browser_.quit()
