"""HTML helpers: everything escaped, nothing external, images sized."""

from analysis.report.assets import Image, safe_name
from analysis.report.page import Section, audio, figure, notice, render_page, table


def test_text_is_escaped_everywhere():
    hostile = '<script>alert("x")</script>'
    html = render_page(
        hostile,
        [hostile],
        [Section("a", hostile, table([hostile], [[hostile]]) + notice(hostile))],
    )
    assert "<script>" not in html
    # <title>, <h1>, the fact line, the nav link, <h2>, <th>, <td>, the notice.
    assert html.count("&lt;script&gt;") == 8


def test_numeric_columns_align_right():
    html = table(["site", "hours"], [["A", "1.50"]], numeric=[1])
    assert '<th class="num">hours</th>' in html
    assert '<td class="num">1.50</td>' in html
    assert "<td>A</td>" in html


def test_media_are_relative_and_sized():
    html = figure(Image("img/a b.png", 120, 80), "alt text", "caption")
    assert 'src="img/a%20b.png" width="120" height="80"' in html
    player = audio("audio/s0001-4.flac", 3.0, "audio/flac")
    assert 'src="audio/s0001-4.flac" type="audio/flac"' in player
    assert 'data-duration="3.000"' in player
    assert 'preload="none"' in player


def test_page_links_only_to_its_own_sections():
    html = render_page("t", [], [Section("gallery", "Gallery", "")])
    assert '<a href="#gallery">Gallery</a>' in html
    assert "http" not in html


def test_safe_names_have_no_path_parts():
    assert safe_name("../../etc/passwd") == "etc-passwd"
    assert safe_name("s0001-12.flac") == "s0001-12.flac"
