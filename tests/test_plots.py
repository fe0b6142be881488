"""The offline plots page and the plot templates DVC fills."""

import json
import re

from dvc_render.html import HTML

from pipeline.commands.plots import QUEUE, page
from tests.conftest import ROOT

OFFLINE = ROOT / ".dvc" / "plots" / "offline.html"


def test_the_page_queues_dvcs_calls_until_the_bundled_libraries_replay_them():
    text = page('const x = "</script>"; window.vegaEmbed = vegaEmbed;')
    # DVC's own check: the page has the placeholder it fills
    html = HTML(text).with_element("<div id='p1'><script>vegaEmbed('#p1', {});</script></div>").embed()
    head, body = html.split("<body>")
    assert QUEUE in head and "<div id='p1'>" in body
    # the bundle cannot close its own script element early
    assert 'const x = "<\\/script>";' in body and body.index("<div id='p1'>") < body.index('type="module"')


def test_the_committed_page_fetches_nothing_and_holds_the_libraries():
    text = OFFLINE.read_text(encoding="utf-8")
    assert text.count("{plot_divs}") == 1 and "{scripts}" not in text  # DVC's CDN tags go nowhere
    assert re.findall(r"<script[^>]+src=", text) == []
    assert "window.__churnPlots" in text and "window.vegaEmbed=" in text and len(text) > 500_000
    assert (
        json.loads((ROOT / ".dvc" / "plots" / "dates.json").read_text())["encoding"]["x"]["type"]
        == "temporal"
    )
