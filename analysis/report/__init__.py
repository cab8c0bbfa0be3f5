"""The HTML report: `write_report(out, config=...)` → `OUT/report/index.html`.

One module per section (`overview`, `training`, `gallery`, `when_where`,
`embedding_map`, `stability`), the inputs they share (`context`), one streaming pass
over the store for examples and the map sample (`scan`), audio examples cut from the
shards (`clips`), figures (`plots`), files beside the page (`assets`) and the HTML
itself (`page`).
"""

from analysis.report.build import write_report

__all__ = ["write_report"]
