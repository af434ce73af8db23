"""Offline rendering for the book.

altair's default HTML loads vega, vega-lite and vega-embed from a CDN, so charts are blank without
network. :func:`offline_html` instead emits a ``div.layersim-chart`` that (a) contains a static SVG
drawn by ``vl_convert`` (the fallback: the figure is there even with JavaScript off), and (b) calls
``window.vegaEmbed`` from a bundle the book serves itself (:func:`write_javascript_bundle`, loaded
as ``_static/vega-bundle.js``), replacing the fallback by the interactive chart once it renders.
:func:`enable_offline_renderer` makes that altair's renderer, so a chart is shown by just being a
cell's last expression.
"""

from __future__ import annotations

import html
import json
import uuid
from pathlib import Path

import altair as alt

__all__ = ["enable_offline_renderer", "offline_html", "write_javascript_bundle"]


def vega_lite_version() -> str:
    """The vega-lite version altair writes, as ``vl_convert`` names it (``"6.4"``)."""
    return alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]


def write_javascript_bundle(path: str | Path) -> Path:
    """Write vega, vega-lite and vega-embed as one self-contained script (no network needed).

    Load it as ``<script type="module">``; it sets ``window.vegaEmbed``. Matches the vega-lite
    version of the installed altair.
    """
    import vl_convert

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bundle = vl_convert.javascript_bundle(vl_version=vega_lite_version())
    path.write_text(bundle, encoding="utf-8")
    return path


# Renders when the bundle is there; leaves the static SVG otherwise (and says why in the console
# only when vega-embed itself fails, which the book's browser test treats as an error).
_SCRIPT = """
(function () {{
  var root = document.getElementById("{id}");
  var spec = {spec};
  function draw() {{
    vegaEmbed(root.querySelector(".layersim-chart-view"), spec,
              {{renderer: "svg", actions: false}})
      .then(function () {{
        var fallback = root.querySelector(".layersim-chart-fallback");
        if (fallback) fallback.remove();
      }})
      .catch(function (error) {{ console.error("layersim chart {id}:", error); }});
  }}
  if (window.vegaEmbed) draw();
  else window.addEventListener("load", function () {{ if (window.vegaEmbed) draw(); }});
}})();
"""


def offline_html(chart: alt.TopLevelMixin | dict) -> str:
    """HTML for a chart that needs no network: a static SVG replaced by the interactive chart.

    See the module's docstring. `chart` is an altair chart or a vega-lite dict.
    """
    import vl_convert

    spec = chart if isinstance(chart, dict) else chart.to_dict()
    svg = vl_convert.vegalite_to_svg(spec, vl_version=vega_lite_version())
    chart_id = f"layersim-chart-{uuid.uuid4().hex}"
    # "</" would end the script element early; JSON allows "<\/".
    spec_json = json.dumps(spec).replace("</", "<\\/")
    script = _SCRIPT.format(id=chart_id, spec=spec_json)
    return (
        f'<div class="layersim-chart" id="{html.escape(chart_id)}">'
        '<div class="layersim-chart-view"></div>'
        f'<div class="layersim-chart-fallback">{svg}</div>'
        f"<script>{script}</script></div>"
    )


def _offline_renderer(spec: dict, **_metadata: object) -> dict[str, str]:
    return {"text/html": offline_html(spec)}


def enable_offline_renderer() -> None:
    """Make :func:`offline_html` altair's renderer (the book's pages call this)."""
    alt.renderers.register("layersim-offline", _offline_renderer)
    alt.renderers.enable("layersim-offline")
