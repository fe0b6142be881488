"""`churn plots-page`: the HTML page `dvc plots show` fills, with Vega, Vega-Lite and vega-embed
inlined so the plots render with no network.

DVC's own page loads the three libraries from a CDN, so offline every interactive plot is blank.
`.dvc/config` points `plots.html_template` at the page this writes (`.dvc/plots/offline.html`, in
git). The libraries come bundled from the `vl-convert-python` package (`pip install
vl-convert-python`, needed only to write the page again). The bundle is an ES module, which runs
after the page is parsed, while DVC writes a classic `vegaEmbed(...)` call beside each plot: a small
classic script queues those calls and the module replays them once the libraries are there.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.core.io import atomic_path

# DVC's plot templates are Vega-Lite 5 specifications
VEGA_LITE = "5.21"

QUEUE = """window.__churnPlots = [];
window.vegaEmbed = function (el, spec, opts) { window.__churnPlots.push([el, spec, opts]); };"""

REPLAY = """window.vegaEmbed = vegaEmbed;
window.vega = vega;
window.vegaLite = vegaLite;
for (const [el, spec, opts] of window.__churnPlots) {
  vegaEmbed(el, spec, opts).catch((error) => {
    document.querySelector(el).textContent = "This plot could not be drawn: " + error;
  });
}"""

PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  <title>Churn pipeline plots</title>
  <script>
{queue}
  </script>
  <style>
    body {{ font-family: sans-serif; margin: 16px; }}
    body > div {{ display: inline-block; vertical-align: top; margin: 8px 16px 24px 0; }}
  </style>
</head>
<body>
{{plot_divs}}
  <script type="module">
{bundle}
  </script>
</body>
</html>
"""


class PlotsPageError(PipelineError):
    """The page cannot be written here."""


def page(bundle: str) -> str:
    """The page around a JavaScript bundle of vega-embed, Vega-Lite and Vega whose module snippet
    replays the queued calls. `{plot_divs}` is where DVC puts the plots."""
    return PAGE.format(queue=QUEUE, bundle=bundle.replace("</script", "<\\/script"))


def main(out: Path) -> str:
    try:
        import vl_convert
    except ImportError as exc:
        raise PlotsPageError(
            "writing the plots page needs the vl-convert-python package: pip install vl-convert-python"
        ) from exc
    text = page(vl_convert.javascript_bundle(snippet=REPLAY, vl_version=VEGA_LITE))
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return f"{out}: {len(text):,} bytes, Vega {vl_convert.get_vega_version()}, Vega-Lite {VEGA_LITE}"
