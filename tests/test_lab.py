"""layersim.book.lab: the lab's "check your answer" cells agree with the library's measurements on
representations whose blocks are known by construction, and say what to look at otherwise."""

from __future__ import annotations

import math

from test_steps import two_block_reps

from layersim.book import lab
from layersim.stats import block_intervals


def _bootstrap():
    # six layers, blocks {1, 2, 3} and {4, 5, 6}: the late block starts at the fourth row
    return block_intervals.bootstrap_blocks(two_block_reps(0), n_boot=50, seed=0)


def test_blocks_and_boundary_checks_follow_the_measurement() -> None:
    boot = _bootstrap()
    layers = [1, 2, 3, 4, 5, 6]
    assert lab.check_blocks(True, boot).ok
    wrong = lab.check_blocks(False, boot)
    assert not wrong.ok and wrong.text.startswith("✘") and "lower end" in wrong.text
    assert lab.check_boundary(4, boot, layers).ok
    far = lab.check_boundary(1, boot, layers)
    assert not far.ok and "best split is at layer 4" in far.text


def test_knee_and_number_checks() -> None:
    kept, accuracy = [0, 1, 2, 3], [0.5, 0.6, 0.895, 0.9]
    assert lab.check_knee(2, kept, accuracy).ok  # 0.895 is within 0.01 of 0.9
    assert not lab.check_knee(3, kept, accuracy).ok
    assert lab.check_number("x", 0.31, 0.3, tolerance=0.05).ok
    assert not lab.check_number("x", 0.5, 0.3, tolerance=0.05).ok
    missing = lab.check_number("x", math.nan, 0.3, tolerance=0.05)
    assert not missing.ok and "placeholder" in missing.text
    assert lab.check_blocks(None, _bootstrap()) == lab.PLACEHOLDER
    assert str(missing) == missing.text == missing._repr_markdown_()
