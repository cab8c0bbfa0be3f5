"""The written report in headless Chromium (Debian's, through Playwright), opened from disk.

What an ecologist would hit first: console errors, broken images, audio that does not
play, a sonotype missing from the gallery, or a page that reaches for the network.
"""

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from playwright.sync_api import Page, Route, sync_playwright

from analysis import load_clustering
from tests.analysis.report.conftest import WrittenReport

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Lets the page's own script fetch its audio files (file:// fetches are blocked
    # otherwise), so the test can decode each clip whole with the Web Audio API.
    "--allow-file-access-from-files",
]
_EXTERNAL = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)

# Resolves once the audio element can play through, or with its error. Chromium trusts
# a FLAC header's length, so this alone does not catch a truncated file: see _DECODE.
_LOAD_AUDIO = """
(audio) => new Promise((resolve) => {
  const done = () => resolve({duration: audio.duration, error: null});
  const failed = () => resolve({duration: NaN, error: audio.error ? audio.error.code : -1});
  audio.addEventListener('canplaythrough', done, {once: true});
  audio.addEventListener('error', failed, {once: true});
  audio.querySelector('source').addEventListener('error', failed, {once: true});
  audio.preload = 'auto';
  audio.load();
})
"""


# Decodes the whole file with the Web Audio API: a truncated or corrupt file comes back
# shorter than its clip or fails.
_DECODE = """
async (audio) => {
  try {
    const response = await fetch(audio.querySelector('source').src);
    const context = new OfflineAudioContext(1, 1, 44100);
    const buffer = await context.decodeAudioData(await response.arrayBuffer());
    const samples = buffer.getChannelData(0);
    let peak = 0;
    for (let i = 0; i < samples.length; i++) peak = Math.max(peak, Math.abs(samples[i]));
    return {duration: buffer.duration, peak: peak, error: null};
  } catch (error) {
    return {duration: NaN, peak: 0, error: String(error)};
  }
}
"""


class _Links(HTMLParser):
    """Every src and href attribute of a document."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls.extend(value for name, value in attrs if name in ("src", "href") and value)


@dataclass
class Browsed:
    """The report open in a tab, and what the tab saw."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browsed(written_report: WrittenReport):
    """The report open in Chromium; requests other than file:// are aborted and recorded."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            seen = Browsed(browser.new_page())
            seen.page.on(
                "console",
                lambda message: (
                    seen.console_errors.append(message.text) if message.type == "error" else None
                ),
            )
            seen.page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
            seen.page.on("request", lambda request: seen.requests.append(request.url))

            def only_files(route: Route) -> None:
                if route.request.url.startswith("file://"):
                    route.continue_()
                else:
                    seen.blocked.append(route.request.url)
                    route.abort()

            seen.page.route("**/*", only_files)
            seen.page.goto(written_report.index.as_uri(), wait_until="load")
            yield seen
        finally:
            browser.close()


def test_page_has_no_console_or_script_errors(browsed: Browsed):
    for image in browsed.page.locator("img").all():
        image.scroll_into_view_if_needed()
    browsed.page.wait_for_load_state("networkidle")
    assert browsed.console_errors == []
    assert browsed.page_errors == []


def test_every_image_loads(browsed: Browsed):
    images = browsed.page.locator("img").all()
    assert len(images) > 10
    for image in images:
        # Images are lazy: scrolled into view, as a reader would, they must load.
        image.scroll_into_view_if_needed()
        image.evaluate("(img) => img.decode()")
        loaded = image.evaluate("(img) => img.complete && img.naturalWidth > 0")
        assert loaded, image.get_attribute("src")


def test_every_audio_example_decodes_and_lasts_its_clip(
    browsed: Browsed, written_report: WrittenReport
):
    players = browsed.page.locator("audio").all()
    clustering = load_clustering(f"{written_report.fake.out}/clusters/default")
    assert len(players) == clustering.k * written_report.config.examples_per_sonotype
    for player in players:
        expected = float(player.get_attribute("data-duration"))
        assert expected > 0
        loaded = player.evaluate(_LOAD_AUDIO)
        assert loaded["error"] is None, player.inner_html()
        assert loaded["duration"] == pytest.approx(expected, abs=0.01)
        decoded = player.evaluate(_DECODE)
        assert decoded["error"] is None, player.inner_html()
        assert decoded["duration"] == pytest.approx(expected, abs=0.01)
        assert decoded["peak"] > 0.5  # clips are peak-normalised to -1 dBFS


def test_gallery_lists_every_sonotype(browsed: Browsed, written_report: WrittenReport):
    page = browsed.page
    clustering = load_clustering(f"{written_report.fake.out}/clusters/default")
    cards = page.locator("#gallery .card")
    found = [int(card.get_attribute("data-sonotype")) for card in cards.all()]
    assert found == list(range(clustering.k))
    for sonotype in found:
        assert page.locator(f"#sonotype-{sonotype} h3").inner_text() == f"Sonotype {sonotype}"


def test_page_makes_no_network_request(browsed: Browsed, written_report: WrittenReport):
    links = _Links()
    links.feed(written_report.index.read_text())
    assert links.urls
    assert [url for url in links.urls if _EXTERNAL.match(url)] == []
    assert browsed.blocked == []
    assert browsed.requests
    assert all(url.startswith(("file://", "data:")) for url in browsed.requests)


def test_failed_file_names_are_shown_as_text_not_markup(browsed: Browsed):
    failed = browsed.page.locator("#overview table").first.inner_text()
    assert "<script>alert(1)</script>.wav" in failed
    assert browsed.page.locator("script").count() == 0
