"""layersim.book.scorecard: the claims decided on learned pairs with the control's verdict beside
each, and the table people read (short statements, coloured verdicts, evidence behind a fold)."""

from __future__ import annotations

import math
import re

import pandas as pd
from test_claims import FULL_DROP_ONE, NO_DROP, tables

from layersim.analysis import claims, verdicts
from layersim.book import scorecard


def _preset(specs, *, learned_tasks=None):
    blocks, curves = tables(specs)
    pairs = blocks[["model", "task"]].drop_duplicates()
    metrics = pd.DataFrame([
        {"preset": "demo", "model": m, "task": t, "seed": 0, "metric": "accuracy",
         "value": 0.9 if learned_tasks is None or t in learned_tasks else 0.5}
        for m, t in pairs.itertuples(index=False)
    ])  # fmt: skip
    baselines = pd.concat([metrics.assign(baseline="majority", value=0.6),
                           metrics.assign(baseline="probe_pooled", value=0.7)])  # fmt: skip
    return {"blocks": blocks, "truncation": curves, "metrics": metrics, "baselines": baselines}


def test_claims_sit_next_to_the_controls_verdict() -> None:
    main = _preset([("m", f"t{i}", 0, 0.2, FULL_DROP_ONE, 5) for i in range(12)])
    control = _preset([("m", f"s{i}", 0, 0.0, NO_DROP, 5) for i in range(12)])
    card = scorecard.claim_rows(main, control=control).set_index("claim")
    assert card.loc["C1", "verdict"] == verdicts.REPRODUCED  # 12 of 12 runs: [0.76, 1]
    assert card.loc["C1", "control"] == verdicts.NOT_REPRODUCED  # 0 of 12: [0, 0.24]


def test_unlearned_tasks_are_left_out_of_the_claims() -> None:
    main = _preset([("m", f"t{i}", 0, 0.2 if i < 6 else 0.0, NO_DROP, 5) for i in range(12)],
                   learned_tasks={f"t{i}" for i in range(6)})  # fmt: skip
    card = scorecard.claim_rows(main).set_index("claim")
    assert card.loc["C1", "estimate"] == 1.0  # the six learned tasks all have blocks
    assert "counting the tasks not learned too: 6 of 12 runs" in card.loc["C1", "evidence"]


def test_the_html_table_has_a_coloured_verdict_and_folded_evidence() -> None:
    card = scorecard.claim_rows(_preset([("m", f"t{i}", 0, 0.2, FULL_DROP_ONE, 5)
                                         for i in range(12)]))  # fmt: skip
    card.loc[0, "evidence"] = "a <b>bold</b> claim"  # text, never markup
    page = scorecard.html_table(card, link="scorecard.html")
    assert page.count("<tr>") == len(card) + 1
    assert '<a href="scorecard.html#c1">C1</a>' in page
    assert "layersim-verdict-good" in page and "layersim-verdict-none" in page  # C4: no ELECTRA
    assert "a &lt;b&gt;bold&lt;/b&gt; claim" in page and "<b>bold" not in page
    assert page.count("<details>") == len(card)
    assert "synthetic control" not in page
    compact = scorecard.html_table(card, details=False)
    assert "<details>" not in compact
    estimate = re.search(r"<td>(1\.00 \[[0-9.]+, 1\.00\])</td>", page)
    assert estimate is not None


def test_verdict_classes() -> None:
    kinds = {
        "reproduced": "good", "yes: block influence": "good", "before": "good",
        "not reproduced": "bad", "no: pooling tokens": "bad",
        "undetermined": "open", "partly: angular distance keeps more": "open",
        "not testable offline": "none",
    }  # fmt: skip
    for verdict, kind in kinds.items():
        assert scorecard.verdict_class(verdict) == kind
    assert set(scorecard.SHORT) == set(verdicts.CLAIM_IDS) | {f"E{i}" for i in range(1, 6)}
    assert not any(math.isnan(len(text)) for text in scorecard.SHORT.values())


def test_model_rows_decide_each_model_on_its_own_runs() -> None:
    # Model a: blocks in all 12 runs; model b: in none. Pooled, 12 of 24 straddles 0.5.
    main = _preset([("a", f"t{i}", 0, 0.2, FULL_DROP_ONE, 5) for i in range(12)]
                   + [("b", f"t{i}", 0, 0.0, NO_DROP, 5) for i in range(12)])  # fmt: skip
    rows = scorecard.model_rows(main).set_index("claim")
    assert rows.loc["a · C1", "verdict"] == verdicts.REPRODUCED
    assert rows.loc["b · C1", "verdict"] == verdicts.NOT_REPRODUCED
    assert rows.loc[f"{claims.ALL_MODELS} · C1", "estimate"] == 0.5
    assert {label.split(" · ")[1] for label in rows.index} == {"C1", "C2", "C3", "C5", "C6"}
