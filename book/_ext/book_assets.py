"""Sphinx extension: what the book needs to work with no network, and clean pages.

* vega, vega-lite and vega-embed are served from the book itself (no CDN): the bundle is
  generated from the installed ``vl_convert`` (matching altair's vega-lite version) into
  ``_build/.vega-<version>/`` once, added to the static path, and loaded on every page as a module
  script that sets ``window.vegaEmbed`` for the charts of :func:`layersim.book.plots.offline_html`.
* ``layersim.css``: wide charts and tables scroll instead of being cut off.
* Sphinx < 8.2 lists some inline scripts twice (sphinx-doc/sphinx#13402); sphinx-thebe's declares
  a ``const``, so the second copy throws on every page. Duplicates are dropped here.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

from layersim.book.plots.offline import vega_lite_version, write_javascript_bundle

BUNDLE = "vega-bundle.js"
STYLE = "layersim.css"
# Charts shrink to the page's column (their SVG keeps its proportions) instead of being cut off;
# wide tables scroll sideways inside their own box; long API names wrap on a phone. Verdicts are
# coloured by their class (layersim.book.scorecard.verdict_class): reproduced / yes, not reproduced
# / no, undetermined, none.
CSS = """
div.layersim-chart { max-width: 100%; overflow-x: auto; }
div.layersim-chart svg { max-width: 100%; height: auto; }
div.cell_output table, table.docutils, table.layersim-scorecard, table.layersim-questions,
table.layersim-verdicts, table.layersim-scorecard-models {
  display: block; max-width: 100%; overflow-x: auto; }
table.layersim-scorecard td, table.layersim-questions td, table.layersim-verdicts td,
table.layersim-scorecard-models td { vertical-align: top; padding: 0.3em 0.6em; }
.layersim-verdict { display: inline-block; padding: 0.1em 0.5em; border-radius: 0.8em;
  font-size: 0.9em; white-space: nowrap; }
.layersim-verdict-good { background: #d9f2dd; color: #14532d; }
.layersim-verdict-bad { background: #fbdcdc; color: #7f1d1d; }
.layersim-verdict-open { background: #fdf0c9; color: #713f12; white-space: normal; }
.layersim-verdict-none { background: #e5e7eb; color: #374151; }
table.layersim-scorecard details summary, table.layersim-questions details summary,
table.layersim-scorecard-models details summary { cursor: pointer; color: #2563eb; }
dl.py dt.sig, dl.field-list > dd { overflow-wrap: anywhere; min-width: 0; }
@media (max-width: 600px) {
  .bd-article code.literal, .bd-article span.pre, dl.py dt.sig span.pre {
    white-space: normal; overflow-wrap: anywhere; } }
"""


def _add_bundle(app: Sphinx, config: Config) -> None:
    directory = Path(app.outdir).parent / f".vega-{vega_lite_version()}"
    if not (directory / BUNDLE).exists():
        write_javascript_bundle(directory / BUNDLE)
    (directory / STYLE).write_text(CSS, encoding="utf-8")
    config.html_static_path.append(str(directory))
    app.add_js_file(BUNDLE, type="module")
    app.add_css_file(STYLE)


def _drop_duplicate_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        attributes = tuple(sorted((k, str(v)) for k, v in attributes.items()))
        # Inline scripts come with filename None or "" depending on who added them.
        key = (getattr(script, "filename", None) or "", attributes)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _add_bundle)
    # Last (priority 900 > the default 500): after sphinx-thebe and others added their scripts.
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
