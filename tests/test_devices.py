"""layersim.models.devices: choosing a device and describing it for provenance."""

from __future__ import annotations

import re

import pytest
import torch

from layersim.models.devices import describe_device, select_device


def test_a_cpu_is_described_by_its_processor_and_threads() -> None:
    text = describe_device(torch.device("cpu"))
    assert re.fullmatch(rf"cpu: .+ \({torch.get_num_threads()} threads\)", text), text
    assert describe_device("cpu") == text


def test_the_default_device_is_where_torch_computes() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert describe_device().startswith(f"{expected}: ")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_is_described_by_its_name() -> None:
    assert describe_device("cuda") == f"cuda: {torch.cuda.get_device_name(0)}"


def test_unknown_devices_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown device"):
        select_device("tpu")
    with pytest.raises(ValueError, match="cuda:N"):
        select_device("cuda:x")
