"""The book's scorecard: the paper's claims and this edition's questions in one table, the
synthetic control's verdict beside each claim, formatted for people.

:func:`claim_rows` and :func:`question_rows` decide everything from the results tables (through
:mod:`layersim.analysis.claims`, :mod:`layersim.analysis.dropping`,
:mod:`layersim.analysis.formation`,
:mod:`layersim.analysis.robustness` and :mod:`layersim.analysis.across`); :func:`html_table` shows
the rows as the landing page and the scorecard page do: a short statement, the verdict (coloured by
its class), the estimate with its interval, and the evidence behind a "details" fold.
"""

from __future__ import annotations

import html
import math

import pandas as pd

from layersim.analysis import across, claims, dropping, formation, robustness, run_tables

__all__ = [
    "SHORT",
    "claim_rows",
    "html_table",
    "model_rows",
    "question_rows",
    "verdict_class",
]

#: One line per claim and question, for tables read at a glance.
SHORT = {
    "C1": "Fine-tuned layers form an early and a late block",
    "C2": "…on (almost) every task",
    "C3": "The pretrained model does not",
    "C4": "ELECTRA does not show it consistently",
    "C5": "The top layers can be dropped, keeping the head",
    "C6": "(hypothesis) They can be dropped from where the CKA block starts",
    "E1": "The information is still in the kept layers",
    "E2": "A similarity signal picks the layers that can go",
    "E3": "The late block forms before the metric saturates",
    "E4": "The block verdict survives other measurement choices",
    "E5": "Models of different tasks part from some depth",
}


def claim_rows(
    tables: dict[str, pd.DataFrame],
    *,
    control: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Claims C1-C6 (:func:`layersim.analysis.claims.scorecard`) decided on the learned pairs, with
    C1's sensitivity to the measurement (the ``robustness`` table, when given) and, with `control`
    (the synthetic preset's tables), the control's verdict in a ``control`` column.

    `tables` maps table names (``blocks``, ``truncation``, ``metrics``, ``baselines``, and
    optionally ``robustness``) to :func:`layersim.results.load` frames of one preset.
    """
    card = _claims(tables)
    if control is not None:
        checked = _claims(control).set_index("claim")["verdict"]
        card["control"] = card["claim"].map(checked)
    return card


def _claims(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    learned = run_tables.learned_table(tables["metrics"], tables["baselines"])
    return claims.scorecard(tables["blocks"], tables["truncation"], learned=learned,
                            robustness=tables.get("robustness"))  # fmt: skip


def model_rows(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """C1, C2, C3, C5 and C6 per model, then for all models together
    (:func:`layersim.analysis.claims.scorecard_by_model`), each row's ``claim`` labelled "model ·
    claim" for :func:`html_table` (``kind="scorecard-models"``).

    `tables` maps ``blocks``, ``truncation``, ``metrics`` and ``baselines`` to the tables of every
    preset that ran the models (:func:`layersim.book.load_presets`).
    """
    learned = run_tables.learned_table(tables["metrics"], tables["baselines"])
    card = claims.scorecard_by_model(tables["blocks"], tables["truncation"], learned=learned)
    return card.assign(claim=card["model"] + " · " + card["claim"])


def question_rows(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Questions E1-E5 from the ``layer_drop``, ``layer_signals``, ``progress``, ``robustness``
    and ``across`` tables (and ``metrics``, ``baselines`` for the learned pairs)."""
    learned = run_tables.learned_table(tables["metrics"], tables["baselines"])
    return pd.concat(
        [
            dropping.scorecard_rows(
                tables["layer_drop"], tables["layer_signals"], learned=learned
            ),  # fmt: skip
            formation.scorecard_row(tables["progress"], learned=learned),
            robustness.scorecard_row(run_tables.only_learned(tables["robustness"], learned)),
            across.scorecard_row(tables["across"], learned=learned),
        ],
        ignore_index=True,
    )


def verdict_class(verdict: str) -> str:
    """A CSS class for a verdict: ``good`` (reproduced, yes), ``bad`` (not reproduced, no),
    ``open`` (undetermined, partly, with), ``none`` (not testable)."""
    text = str(verdict).lower()
    if text.startswith(("not testable", "nan")):
        return "none"
    if text.startswith(("not reproduced", "no")):
        return "bad"
    if text.startswith(("reproduced", "yes", "before", "after", "tasks part")):
        return "good"
    return "open"


def _estimate(row: pd.Series) -> str:
    if math.isnan(row["estimate"]):
        return "–"
    text = f"{row['estimate']:.2f}"
    if not (math.isnan(row["lower"]) or math.isnan(row["upper"])):
        text += f" [{row['lower']:.2f}, {row['upper']:.2f}]"
    return text


def _claim_id(label: object) -> str:
    """``C1`` of ``C1`` or of ``mpnet-base · C1``."""
    return str(label).split(" · ")[-1]


def html_table(
    frame: pd.DataFrame, *, link: str | None = None, details: bool = True,
    kind: str = "scorecard",
) -> str:  # fmt: skip
    """The rows as an HTML table: the claim, its short statement (:data:`SHORT`), the verdict in
    a coloured badge, the estimate with its 95% interval, the synthetic control's verdict where
    there is a ``control`` column, and (with `details`) the statistic and evidence folded
    behind a "details" toggle. `link` makes each claim a link to that page (e.g.
    ``scorecard.html``); `kind` names the table's class, ``layersim-<kind>``."""
    rows = []
    show_control = "control" in frame.columns
    for _, row in frame.iterrows():
        claim = html.escape(str(row["claim"]))
        anchor = _claim_id(row["claim"]).lower()
        name = f'<a href="{html.escape(link)}#{anchor}">{claim}</a>' if link else claim
        verdict = str(row["verdict"])
        cells = [
            f'<td class="layersim-claim">{name}</td>',
            f"<td>{html.escape(SHORT.get(_claim_id(row['claim']), str(row['statement'])))}</td>",
            f'<td><span class="layersim-verdict layersim-verdict-{verdict_class(verdict)}">'
            f"{html.escape(verdict)}</span></td>",
            f"<td>{_estimate(row)}</td>",
        ]
        if show_control:
            control = row.get("control")
            text = "–" if not isinstance(control, str) else control
            cells.append(
                f'<td><span class="layersim-verdict layersim-verdict-{verdict_class(text)}">'
                f"{html.escape(text)}</span></td>"
            )
        if details:
            cells.append(
                f"<td><details><summary>details</summary><p>{html.escape(str(row['statement']))}"
                f"</p><p><em>Statistic:</em> {html.escape(str(row['statistic']))}</p>"
                f"<p><em>Evidence:</em> {html.escape(str(row['evidence']))}</p></details></td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    heads = ["", "claim", "verdict", "estimate [95% interval]"]
    heads += ["synthetic control"] if show_control else []
    heads += [""] if details else []
    head = "".join(f"<th>{h}</th>" for h in heads)
    return (
        f'<table class="layersim-{html.escape(kind)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
