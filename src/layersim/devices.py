"""Choosing the device an experiment notebook runs on, for the model code and for Trainer alike."""

from __future__ import annotations

import os

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


def describe_device(device: torch.device) -> str:
    """A short human-readable name: ``"cpu (2 threads)"`` or the GPU's name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"
