"""layersim.pipeline.passes: one kept forward pass gives what each step would have computed by
itself (pooled states as layersim.models.reps pools them, the truncated models' outputs as the
truncated models give them, the probes' features as layersim.models.probe reads them), for any
subset of its rows; it is read back from disk instead of recomputed, and recomputed when the weights
change."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from layersim import tasks
from layersim.models import probe, reps, truncate
from layersim.pipeline import finetune, passes, steps
from layersim.results import RunKey

TASK = "synth_sentiment"


@pytest.fixture(scope="module", params=["tiny-bert", "tiny-llama", "tiny-mpnet"])
def setup(request):
    model = finetune.load_model(request.param, TASK, seed=0).eval()
    tokenizer = finetune.load_tokenizer(request.param)
    raw = tasks.load(TASK, "validation")
    rows = np.arange(0, 60, 2)  # every other of the first 60 validation rows
    record = passes.compute_record(model, tokenizer, TASK, raw.select(rows), rows, max_length=32,
                                   batch_size=7, seed=3)  # fmt: skip
    return model, tokenizer, raw, rows, record


def test_pooled_states_are_what_layer_representations_gives(setup) -> None:
    model, tokenizer, raw, rows, record = setup
    encoded = tasks.encode(TASK, tokenizer, raw.select(rows), max_length=32)
    loader = DataLoader(encoded, batch_size=5, collate_fn=tasks.collator(TASK, tokenizer))
    for pooling in (record.own, "mean"):
        want = reps.layer_representations(model, loader, pooling=pooling)
        torch.testing.assert_close(record.pooled[pooling], want, atol=1e-5, rtol=1e-4)
    assert record.own == ("last" if model.config.model_type == "llama" else "cls")


def test_truncated_outputs_are_the_truncated_models_outputs(setup) -> None:
    model, tokenizer, raw, rows, record = setup
    encoded = tasks.encode(TASK, tokenizer, raw.select(rows), max_length=32)
    assert record.layer_logits is not None
    for k in range(truncate.num_layers(model) + 1):
        truncated = truncate.keep_first_layers(model, k)
        _, _, labels, logits = probe.head_inputs(
            truncated, tokenizer, TASK, encoded, batch_size=4, with_logits=True
        )
        np.testing.assert_allclose(record.layer_logits[k], logits, atol=1e-5)
        np.testing.assert_array_equal(record.labels, labels)


def test_head_features_are_the_probes_features(setup) -> None:
    model, tokenizer, raw, rows, record = setup
    encoded = tasks.encode(TASK, tokenizer, raw.select(rows), max_length=32)
    head, mean, _, logits = probe.head_inputs(model, tokenizer, TASK, encoded, batch_size=6,
                                              with_logits=True)  # fmt: skip
    np.testing.assert_allclose(record.head, head, atol=1e-5)
    np.testing.assert_allclose(record.pooled["mean"][-1].numpy(), mean, atol=1e-5)
    np.testing.assert_allclose(record.logits, logits, atol=1e-5)


def test_a_subset_is_the_record_of_its_rows_token_draws_included(setup) -> None:
    model, tokenizer, raw, rows, record = setup
    part = rows[[1, 4, 5, 20]]
    alone = passes.compute_record(model, tokenizer, TASK, raw.select(part), part, max_length=32,
                                  batch_size=3, seed=3)  # fmt: skip
    chosen = record.select(part)
    for pooling in chosen.pooled:
        torch.testing.assert_close(chosen.pooled[pooling], alone.pooled[pooling], atol=1e-5,
                                   rtol=1e-4)  # fmt: skip
    np.testing.assert_allclose(chosen.layer_logits[1], alone.layer_logits[1], atol=1e-5)
    assert record.covers(part) and not record.covers([1])
    with pytest.raises(ValueError, match="does not hold every requested row"):
        record.select([1, 2])


def test_the_run_record_is_kept_and_recomputed_when_the_weights_change(tmp_path, monkeypatch):
    model = finetune.load_model("tiny-bert", TASK, seed=0).eval()
    tokenizer = finetune.load_tokenizer("tiny-bert")
    weights = tmp_path / "model"
    model.save_pretrained(weights)
    key = RunKey("tiny", "tiny-bert", TASK, 0)
    rows = steps.evaluation_rows(TASK, limit=50, seed=0)
    first = steps.validation_record(key, "finetuned", model, tokenizer, TASK, rows[:20],
                                    work_dir=str(tmp_path / "runs"), weights=str(weights),
                                    preset="tiny")  # fmt: skip
    path = key.run_dir(tmp_path / "runs") / "passes" / "finetuned.pt"
    assert path.is_file()
    kept = torch.load(path, weights_only=False)["record"]["rows"]
    size = len(tasks.load(TASK, "validation"))  # the tiny preset's similarity, robustness and
    union = passes.validation_rows(size, similarity=200, eval_limit=200, seed=0)  # evaluation rows
    np.testing.assert_array_equal(kept, union)

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although a covering record was kept")

    monkeypatch.setattr(passes, "compute_record", fail)
    again = steps.validation_record(key, "finetuned", model, tokenizer, TASK, rows[5:30],
                                    work_dir=str(tmp_path / "runs"), weights=str(weights),
                                    preset="tiny")  # fmt: skip
    torch.testing.assert_close(again.select(rows[5:20]).pooled["cls"],
                               first.select(rows[5:20]).pooled["cls"])  # fmt: skip
    model.save_pretrained(weights)  # new weights file: the kept record no longer matches
    with pytest.raises(AssertionError, match="recomputed"):
        steps.validation_record(key, "finetuned", model, tokenizer, TASK, rows[:20],
                                work_dir=str(tmp_path / "runs"), weights=str(weights),
                                preset="tiny")  # fmt: skip
