"""Choosing the device an experiment runs on (for the model code and Trainer alike), and
describing it for provenance."""

from __future__ import annotations

import os
import platform

import torch

__all__ = ["describe_device", "select_device"]


def select_device(name: str = "auto") -> torch.device:
    """The device to run on: ``"auto"`` (a GPU if any), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    ``"cpu"`` and ``"cuda:N"`` also set ``CUDA_VISIBLE_DEVICES`` so that code which picks its
    own device (``transformers.Trainer``) makes the same choice; call this before anything
    touches CUDA (first thing in a fresh process or notebook kernel).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        index = name.partition(":")[2]
        if index:
            if not index.isdigit():
                raise ValueError(f"device {name!r}: expected cuda:N with a GPU number N")
            os.environ["CUDA_VISIBLE_DEVICES"] = index
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU; use 'cpu'")
        return torch.device("cuda")
    raise ValueError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def describe_device(device: torch.device | str | None = None) -> str:
    """What a computation ran on, for provenance: ``"cuda: <GPU name>"`` or
    ``"cpu: <processor> (<n> threads)"``.

    The one description of a device that results record (notebook provenance and fine-tuning's
    ``metrics.json`` alike). `device` defaults to where torch computes by default: the first
    GPU if there is one, else the CPU.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"{device.type}: {_processor()} ({torch.get_num_threads()} threads)"


def _processor() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, where ``platform`` gives only the
    architecture), or whatever ``platform`` knows elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown processor"
