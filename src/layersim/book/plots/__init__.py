"""Charts of the results tables (altair), and their offline HTML for the book.

Every function takes the tidy frames of :func:`layersim.results.load` and returns an altair chart;
nothing here reads files or computes statistics beyond averaging over seeds. Tooltips carry the
exact numbers (CKA to four decimals, layer pair, task, model, seeds), so a reader can hover
instead of squinting at a colour scale.

Modules: heatmaps (:mod:`.heatmaps`), curves (:mod:`.curves`), across seeds and tasks
(:mod:`.across`), what they share (:mod:`.common`) and offline rendering (:mod:`.offline`); their
public names are re-exported here (``layersim.book.plots.cka_heatmaps``).
"""

from layersim.book.plots.across import across_agreement, across_heatmaps, task_agreement
from layersim.book.plots.common import KIND_TITLES
from layersim.book.plots.curves import (
    curve,
    depth_boundaries,
    depth_truncation_curves,
    progress_curves,
    robustness_curves,
    signal_choices,
    truncation_curves,
)
from layersim.book.plots.heatmaps import (
    block_statistics,
    cka_heatmaps,
    cross_diagonal,
    headline,
    matrix_heatmap,
    model_heatmaps,
)
from layersim.book.plots.offline import (
    enable_offline_renderer,
    offline_html,
    write_javascript_bundle,
)

__all__ = [
    "KIND_TITLES",
    "across_agreement",
    "across_heatmaps",
    "block_statistics",
    "cka_heatmaps",
    "cross_diagonal",
    "curve",
    "depth_boundaries",
    "depth_truncation_curves",
    "enable_offline_renderer",
    "headline",
    "matrix_heatmap",
    "model_heatmaps",
    "offline_html",
    "progress_curves",
    "robustness_curves",
    "signal_choices",
    "task_agreement",
    "truncation_curves",
    "write_javascript_bundle",
]
