"""HTML assembly: sections, tables, figures and notices, and the page around them.

Every piece of text that reaches the page goes through `esc` (`html.escape`), so file
paths, site names and error messages cannot inject markup. The page is one static
file with its CSS inline and no script: it opens from disk, offline, in any browser.
Images and audio are separate files next to it, referenced by relative URLs.
"""

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from analysis.report.assets import Image

_CSS = """
:root { --ink: #1d2327; --muted: #5f6b73; --line: #d9dee2; --bg: #f6f7f8; --accent: #1f6f5c; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 "DejaVu Sans", "Liberation Sans", Arial, sans-serif;
  color: var(--ink); background: var(--bg); }
header { background: #14372f; color: #fff; padding: 18px 32px 14px; }
header h1 { margin: 0 0 4px; font-size: 24px; font-weight: 600; }
header p { margin: 2px 0; color: #cfe3dc; font-size: 13px; }
nav { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid var(--line);
  padding: 8px 32px; font-size: 14px; }
nav a { color: var(--accent); margin-right: 18px; text-decoration: none; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 32px 48px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 20px 0;
  padding: 6px 22px 18px; }
h2 { font-size: 20px; margin: 14px 0 8px; color: #14372f; }
h3 { font-size: 16px; margin: 18px 0 6px; }
p.lead { color: var(--muted); margin-top: 0; }
.figures { display: flex; flex-wrap: wrap; gap: 14px; }
figure { margin: 8px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: 12.5px; color: var(--muted); max-width: 640px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px; text-align: left;
  vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { max-height: 360px; overflow: auto; display: inline-block; max-width: 100%; }
.notice { border-left: 4px solid #8aa6b8; background: #eef3f6; padding: 8px 12px; margin: 10px 0; }
.notice.warning { border-left-color: #c47f17; background: #fbf3e4; }
.stats { display: flex; flex-wrap: wrap; gap: 10px; margin: 6px 0 10px; }
.stat { background: var(--bg); border-radius: 4px; padding: 6px 12px; min-width: 120px; }
.stat b { display: block; font-size: 18px; }
.stat span { font-size: 12px; color: var(--muted); }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 14px; }
.card { border: 1px solid var(--line); border-top: 6px solid var(--swatch, #888);
  border-radius: 5px; padding: 8px 12px 10px; background: #fff; }
.card h3 { margin: 4px 0 2px; }
.card .facts { font-size: 13px; color: var(--muted); margin: 0 0 6px; }
.example { margin: 8px 0; }
.example img { width: 100%; height: auto; display: block; border: 1px solid var(--line); }
.example audio { width: 100%; height: 32px; margin-top: 3px; }
.example .caption { font-size: 12px; color: var(--muted); }
details { margin: 8px 0; }
pre { background: var(--bg); padding: 8px; overflow: auto; max-height: 320px; font-size: 12px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 12px; }
"""


@dataclass(frozen=True)
class Section:
    """One part of the page.

    Attributes:
        anchor: the HTML id (also the link target in the navigation bar).
        title: the heading.
        body: the section's HTML, built with the helpers of this module.
    """

    anchor: str
    title: str
    body: str


def esc(value: object) -> str:
    """Any value as text safe inside HTML content and quoted attributes."""
    return html.escape(str(value), quote=True)


def url(path: str) -> str:
    """A relative URL for a file of the report (percent-encoded, slashes kept)."""
    return quote(path, safe="/")


def duration_text(seconds: float) -> str:
    """A duration in the unit a reader expects: 45 s, 12 min, 3.4 h, 1,234 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 100 else f"{hours:,.0f} h"


def notice(text: str, warning: bool = False) -> str:
    """A boxed message: why a part of the page is empty or incomplete."""
    kind = "notice warning" if warning else "notice"
    return f'<div class="{kind}">{esc(text)}</div>'


def paragraph(text: str, lead: bool = False) -> str:
    """A paragraph of plain text."""
    return f'<p class="lead">{esc(text)}</p>' if lead else f"<p>{esc(text)}</p>"


def heading(text: str) -> str:
    """A sub-heading inside a section."""
    return f"<h3>{esc(text)}</h3>"


def stat_boxes(items: Sequence[tuple[str, str]]) -> str:
    """Key figures as small boxes: (value, what it is)."""
    boxes = "".join(
        f'<div class="stat"><b>{esc(value)}</b><span>{esc(label)}</span></div>'
        for value, label in items
    )
    return f'<div class="stats">{boxes}</div>'


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    numeric: Sequence[int] = (),
    scroll: bool = False,
) -> str:
    """A table of plain values (escaped); columns listed in `numeric` align right."""
    numeric_columns = set(numeric)

    def cell(tag: str, index: int, value: object) -> str:
        css = ' class="num"' if index in numeric_columns else ""
        return f"<{tag}{css}>{esc(value)}</{tag}>"

    head = "".join(cell("th", i, name) for i, name in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, value) for i, value in enumerate(row)) + "</tr>"
        for row in rows
    )
    markup = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{markup}</div>' if scroll else markup


def img(image: Image, alt: str) -> str:
    """An `<img>` with its pixel size, so the layout does not jump while images load."""
    return (
        f'<img src="{esc(url(image.src))}" width="{image.width}" height="{image.height}" '
        f'alt="{esc(alt)}" loading="lazy">'
    )


def figure(image: Image, alt: str, caption: str = "") -> str:
    """An image with an optional caption."""
    text = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f"<figure>{img(image, alt)}{text}</figure>"


def audio(src: str, duration_s: float, mime: str) -> str:
    """An audio player; `preload="none"` keeps the page light until someone presses play."""
    return (
        f'<audio controls preload="none" data-duration="{duration_s:.3f}">'
        f'<source src="{esc(url(src))}" type="{esc(mime)}"></audio>'
    )


def details(summary: str, body_html: str) -> str:
    """A collapsed block."""
    return f"<details><summary>{esc(summary)}</summary>{body_html}</details>"


def preformatted(text: str) -> str:
    """Monospaced text (a config file)."""
    return f"<pre>{esc(text)}</pre>"


def render_page(title: str, facts: Sequence[str], sections: Sequence[Section]) -> str:
    """The whole page.

    Args:
        title: the page title.
        facts: short lines under the title (data, clustering, clock).
        sections: the sections, in order.

    Returns:
        The HTML document.
    """
    nav = "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
    lines = "".join(f"<p>{esc(fact)}</p>" for fact in facts)
    body = "".join(
        f'<section id="{esc(s.anchor)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections
    )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # An empty inline icon: browsers then do not look for favicon.ico next to the page.
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1>{lines}</header><nav>{nav}</nav>"
        f"<main>{body}</main><footer>written by sonotype report, {esc(generated)}; "
        "opens from disk, no network needed</footer></body></html>\n"
    )
