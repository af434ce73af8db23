"""What every experiment notebook does before and after its computation.

Before: pick the device, name the run (:class:`layersim.results.RunKey`, a model directory keyed
by :func:`layersim.pipeline.presets.model_key`), read the preset's settings for the task and
start the clock. After: record the parameters, the device and the seconds as the step's
provenance and write its tables atomically. The notebooks call :func:`run_step` (or
:func:`run_grid_step` for a step over a whole grid) and :meth:`StepRun.write`, so that only
their own computation is left in them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from layersim import results, tasks
from layersim.models import devices
from layersim.pipeline import presets

__all__ = ["StepRun", "run_grid_step", "run_step"]


@dataclass
class StepRun:
    """One step of one run (or of one grid): where it writes, on which device, since when."""

    preset: str
    model: str
    device: Any
    spec: presets.Preset
    key: results.RunKey | None = None
    start: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        """Seconds since the step started."""
        return time.perf_counter() - self.start

    def write(
        self,
        results_dir: str,
        tables: Mapping[str, pd.DataFrame],
        parameters: Mapping[str, Any],
    ) -> float:
        """Write `tables` (name -> frame) with the step's provenance (`parameters`, the device,
        the seconds so far) and print what was written; returns the seconds."""
        if not tables:
            raise ValueError(
                "tables is empty; pass {table name: frame} for each table the step made"
            )
        seconds = self.seconds
        provenance = results.collect_provenance(
            dict(parameters), devices.describe_device(self.device), seconds
        )
        for name, frame in tables.items():
            if self.key is None:
                results.write_grid_table(
                    results_dir, self.preset, self.model, name, frame, provenance=provenance
                )
            else:
                results.write_table(results_dir, self.key, name, frame, provenance=provenance)
        rows = ", ".join(f"{len(frame)} {name}" for name, frame in tables.items())
        print(f"wrote {rows} rows in {seconds:.0f} s")
        return seconds


def run_step(preset: str, model: str, task: str, seed: int, *, device: str = "auto") -> StepRun:
    """Start a step of run (`preset`, `model`, `task`, `seed`) on `device` (``auto``: a GPU when
    there is one). `model` is a preset name, a hub id or a local directory."""
    name = tasks.get_task(task).name
    key = results.RunKey(preset, presets.model_key(model), name, seed)
    chosen = devices.select_device(device)
    return StepRun(preset, key.model, chosen, presets.get_preset(preset, name), key=key)


def run_grid_step(preset: str, model: str, *, device: str = "auto") -> StepRun:
    """Start a step over the grid of `preset` and `model` (every task and seed of it)."""
    chosen = devices.select_device(device)
    return StepRun(preset, presets.model_key(model), chosen, presets.get_preset(preset))
