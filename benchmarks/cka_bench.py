"""Benchmark of layersim.cka against pytorch-cka (and, for accuracy, ckatorch).

All libraries run in one process on identical synthetic "residual-stream" activations:
13 layers × 768 dimensions, x_{l+1} = x_l + noise, float32, with a few dimensions carrying a
large mean (offset 0 or 30, like the outlier dimensions of a transformer's residual stream).

For each n it reports the median (and min) wall time over --repeats runs, the peak memory
the call added on top of the input (CPU: the kernel's peak resident set size, reset before
each call; CUDA: torch.cuda.max_memory_allocated), the max abs error of the 13×13 matrix
against a float64 oracle written here (centred float64 data, ‖X_aᵀX_b‖²_F per pair;
debiased via Song et al.'s unbiased HSIC), and layersim's speedup: pytorch-cka's median
time over layersim's (exact, debiased).

pytorch-cka's `cka_from_features` computes debiased CKA (clamped to [0, 1]), so it is
compared with the debiased oracle. It materialises two stacks of 13 n×n float32 Gram
matrices; when that would exceed --max-peer-gib it is skipped (n = 20,000 needs ~42 GB).

Usage::

    python benchmarks/cka_bench.py                      # n = 2000 5000 20000 on CPU
    python benchmarks/cka_bench.py --quick              # n = 2000 only, one repeat
    python benchmarks/cka_bench.py --device cuda --with-fast
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import importlib.util
import os
import platform
import statistics
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from layersim import cka as lcka  # noqa: E402

LAYERS, WIDTH, OFFSET_DIMS = 13, 768, 4


# ---------------------------------------------------------------------------------------------
# Data and oracle
# ---------------------------------------------------------------------------------------------


def residual_stream(
    n: int,
    offset: float,
    device: str,
    seed: int = 0,
    layers: int = LAYERS,
    width: int = WIDTH,
) -> torch.Tensor:
    """(layers, n, width) float32: x_{l+1} = x_l + noise; the first 4 dimensions have mean
    `offset`. The default shape is a base-size encoder's (13 hidden states × 768)."""
    g = torch.Generator(device=device).manual_seed(seed)
    out = torch.empty((layers, n, width), dtype=torch.float32, device=device)
    cur = torch.randn((n, width), generator=g, device=device)
    for layer in range(layers):
        cur += 0.5 * torch.randn((n, width), generator=g, device=device)
        out[layer] = cur
    out[:, :, :OFFSET_DIMS] += offset
    return out


def oracle(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 biased and debiased linear CKA, one pair at a time, from the closed forms.

    Biased: ‖X_aᵀX_b‖²_F / (‖X_aᵀX_a‖_F ‖X_bᵀX_b‖_F) on column-centred data (Kornblith et
    al. 2019, eq. 5). Debiased: Song et al.'s unbiased HSIC with K~ = K - diag(K); for centred
    data tr(K~L~) = ‖XᵀY‖² - rᵀs, 1ᵀK~1 = -Σr and 1ᵀK~L~1 = rᵀs, with r, s the row norms².
    """
    n_layers, n = x.shape[0], x.shape[1]
    centred = []
    for layer in x:
        z = layer.to(torch.float64)
        centred.append(z - z.mean(0))
    p = torch.zeros((n_layers, n_layers), dtype=torch.float64)
    for a in range(n_layers):
        for b in range(a, n_layers):
            p[a, b] = p[b, a] = float((centred[a].T @ centred[b]).square().sum())
    r = torch.stack([(z * z).sum(1) for z in centred]).cpu()
    rs = r @ r.T
    s = r.sum(1)
    hsic_u = p - rs + torch.outer(s, s) / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * rs
    results = []
    for num in (p, hsic_u):
        d = num.diagonal()
        results.append(num / torch.sqrt(torch.outer(d, d)))
    return results[0], results[1]


# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{key} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Return freed heap to the OS and reset the kernel's peak-RSS mark (VmHWM)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak extra memory of a block.

    CUDA: torch.cuda.max_memory_allocated. CPU (tracemalloc does not see torch): the kernel's
    peak resident set size VmHWM, reset just before the block (after returning freed heap to
    the OS, so memory recycled from an earlier call is counted again); where that reset is not
    possible, the RSS sampled every millisecond.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_bytes("VmRSS"))
            time.sleep(0.001)

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self._hwm = _reset_peak_rss()
        self.base = self.peak = _status_bytes("VmRSS")
        if not self._hwm:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        elif self._hwm:
            self.peak = _status_bytes("VmHWM")
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            self.peak = max(self.peak, _status_bytes("VmRSS"))

    @property
    def extra_gib(self) -> float:
        return max(0, self.peak - self.base) / 2**30


def measure(
    fn: Callable[[], torch.Tensor],
    device: str,
    repeats: int,
    warmup: bool,
    deadline: float | None = None,
) -> tuple[tuple[float, float], float, torch.Tensor]:
    """(median, min) seconds, max peak extra GiB and the (last) result of `fn`.

    With a `deadline` (a time.perf_counter() value) the repeats stop once it has passed, after at
    least one, so a slow case cannot eat the time budget of the cases after it.
    """
    if warmup:
        fn()
    times, peaks = [], []
    result = None
    for _ in range(repeats):
        if times and deadline is not None and time.perf_counter() > deadline:
            break
        with PeakMemory(device) as mem:
            start = time.perf_counter()
            result = fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        peaks.append(mem.extra_gib)
        del mem
    assert result is not None
    timing = (statistics.median(times), min(times))
    return timing, max(peaks), result.detach().to("cpu", torch.float64)


# ---------------------------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------------------------


def _pytorch_cka_core() -> types.ModuleType:
    """pytorch-cka's computing module `cka.cka` without its package's `__init__`.

    The package's `__init__` also imports its plotting module, which needs matplotlib; the
    computation itself needs only torch and tqdm. So where matplotlib is missing, the package is
    registered as an empty namespace and only its computing submodule is imported.
    """
    spec = importlib.util.find_spec("cka")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'cka' (pip install pytorch-cka==1.1.3)")
    package = types.ModuleType("cka")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["cka"] = package
    try:
        return importlib.import_module("cka.cka")
    except Exception:
        sys.modules.pop("cka", None)
        raise


def find_pytorch_cka() -> tuple[Callable[[torch.Tensor], torch.Tensor] | None, str]:
    """(all-pairs CKA of pytorch-cka 1.1.3, "") or (None, why it is not available)."""
    version = package_version("pytorch-cka")
    if version == "not installed":
        return None, "pytorch-cka not installed on this machine"
    try:
        import cka  # pytorch-cka==1.1.3

        fn = cka.cka_from_features
    except ImportError as exc:
        try:
            fn = _pytorch_cka_core().cka_from_features
        except Exception as inner:  # noqa: BLE001 - any import problem means "not available"
            return None, f"pytorch-cka {version} cannot be imported ({exc}; {inner})"
    except Exception as exc:  # noqa: BLE001
        return None, f"pytorch-cka {version} cannot be imported ({type(exc).__name__}: {exc})"
    return (lambda x: fn(x, x)), ""


def load_pytorch_cka() -> Callable[[torch.Tensor], torch.Tensor] | None:
    fn, reason = find_pytorch_cka()
    if fn is None:
        print(f"{reason}; skipping it.")
    return fn


def load_ckatorch() -> Callable[..., torch.Tensor] | None:
    try:
        from ckatorch.core import cka_base
    except Exception as exc:  # noqa: BLE001
        print(f"ckatorch not available ({type(exc).__name__}: {exc}); skipping it.")
        return None
    return cka_base


def package_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return "not installed"


# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def matmul_gflops(dtype: torch.dtype, device: str, size: int = 2048) -> float:
    a = torch.randn((size, size), dtype=dtype, device=device)
    a @ a
    best = float("inf")
    for _ in range(3):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ a
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def machine_report(device: str) -> list[str]:
    lines = [
        f"machine: {cpu_model()}, {os.cpu_count()} logical cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}",
        f"load average before the run: {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
        " (other processes competing for the cores distort the times)",
    ]
    if device == "cuda":
        lines.append(f"gpu: {torch.cuda.get_device_name()}")
    lines.append(
        f"matmul 2048³ on {device}: float32 {matmul_gflops(torch.float32, device):.0f} GFLOP/s, "
        f"float64 {matmul_gflops(torch.float64, device):.0f} GFLOP/s"
    )
    lines.append(
        f"peers: pytorch-cka {package_version('pytorch-cka')}, "
        f"ckatorch {package_version('ckatorch')}"
    )
    return lines


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def _form_name(n: int) -> str:
    """Which formulation cka_matrix picks: asked of the library where it still exposes its
    private chooser (cka.py is being split into a package), else 'auto'."""
    choose = getattr(lcka, "_choose_method", None)
    return choose(n, [WIDTH] * LAYERS, None) if choose is not None else "auto"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 5000, 20000])
    parser.add_argument("--offsets", type=float, nargs="+", default=[0.0, 30.0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="n = 2000 only, one repeat")
    parser.add_argument("--with-fast", action="store_true", help='also time precision="fast"')
    parser.add_argument(
        "--max-peer-gib",
        type=float,
        default=8.0,
        help="skip pytorch-cka when its two Gram stacks would need more than this",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.repeats = [2000], 1
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")
    device = args.device

    for line in machine_report(device):
        print(line)
    print(
        f"data: {LAYERS} layers × {WIDTH} dims, float32, residual stream x_(l+1) = x_l + "
        f"0.5·noise, {OFFSET_DIMS} dims offset by the given mean; {args.repeats} repeat(s), "
        "median time; memory = peak extra over the call "
        + ("(torch.cuda.max_memory_allocated)" if device == "cuda" else "(peak RSS, VmHWM)")
    )
    peer = load_pytorch_cka()
    ckatorch = load_ckatorch()
    print()

    header = (
        f"{'n':>6} {'offset':>6}  {'implementation':<38} {'estimator':<9} {'median s':>8} "
        f"{'min s':>7} {'peak GiB':>8} {'max|err|':>9} {'layersim speedup':>16}"
    )
    print(header)
    print("-" * len(header))
    for n in args.n:
        for offset in args.offsets:
            x = residual_stream(n, offset, device)
            start = time.perf_counter()
            want_b, want_u = oracle(x)
            oracle_s = time.perf_counter() - start
            warm = n <= 5000
            form = _form_name(n)
            rows: list[tuple[str, str, tuple[float, float], float, float, str]] = []
            times: dict[tuple[str, str], float] = {}
            modes = ["exact"] + (["fast"] if args.with_fast else [])
            for mode in modes:
                for debiased, want in ((False, want_b), (True, want_u)):
                    sec, gib, got = measure(
                        lambda d=debiased, m=mode, x=x: lcka.cka_matrix(x, debiased=d, precision=m),
                        device,
                        args.repeats,
                        warm,
                    )
                    est = "debiased" if debiased else "biased"
                    times[(mode, est)] = sec[0]
                    err = float((got - want).abs().max())
                    rows.append((f"layersim {mode} ({form} form)", est, sec, gib, err, ""))
            if peer is not None:
                need_gib = 2 * LAYERS * n * n * 4 / 2**30
                limit = args.max_peer_gib
                if device == "cuda":
                    limit = min(limit, torch.cuda.mem_get_info()[0] / 2**30 * 0.9)
                if need_gib > limit:
                    print(
                        f"{n:>6} {offset:>6g}  pytorch-cka skipped: its two stacks of "
                        f"{LAYERS} n×n float32 Grams need {need_gib:.1f} GiB > {limit:.1f} GiB"
                    )
                else:
                    sec, gib, got = measure(lambda x=x: peer(x), device, args.repeats, warm)
                    err = float((got - want_u).abs().max())
                    ratio = sec[0] / times[("exact", "debiased")]
                    rows.append(
                        ("pytorch-cka 1.1.3 float32", "debiased", sec, gib, err, f"{ratio:.1f}×")
                    )
            if ckatorch is not None and n <= 2000:
                # per-pair float64 reference implementation: accuracy only, on row 0 (13 pairs)
                for debiased, want in ((False, want_b), (True, want_u)):
                    start = time.perf_counter()
                    row0 = torch.stack(
                        [ckatorch(x[0], x[b], unbiased=debiased).cpu() for b in range(LAYERS)]
                    ).to(torch.float64)
                    elapsed = time.perf_counter() - start
                    sec = (elapsed, elapsed)
                    err = float((row0 - want[0]).abs().max())
                    est = "debiased" if debiased else "biased"
                    rows.append(("ckatorch 1.0.3 (row 0 only, 13 pairs)", est, sec, 0.0, err, ""))
            for name, est, sec, gib, err, ratio in rows:
                gib_s = "n/a" if name.startswith("ckatorch") else f"{gib:.2f}"
                print(
                    f"{n:>6} {offset:>6g}  {name:<38} {est:<9} {sec[0]:>8.3f} {sec[1]:>7.3f} "
                    f"{gib_s:>8} {err:>9.1e} {ratio:>16}"
                )
            print(
                f"{n:>6} {offset:>6g}  (float64 oracle took {oracle_s:.1f} s; "
                f"1-min load average now {os.getloadavg()[0]:.2f})"
            )
            sys.stdout.flush()
            del x


if __name__ == "__main__":
    main()
