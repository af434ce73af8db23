"""layersim.stats.redundancy against cosines and angles computed by hand on small tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from layersim.stats import redundancy


def _by_hand_cosine(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(a @ b / np.sqrt(a @ a) / np.sqrt(b @ b))


def test_block_influence_is_one_minus_the_mean_cosine() -> None:
    # 3 hidden states, 2 tokens, 2 dims: layer 1 rotates token 0 by 90 degrees, keeps token 1;
    # layer 2 scales everything (cosine 1: no influence)
    states = torch.tensor(
        [[[1.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 1.0]], [[0.0, 3.0], [2.0, 2.0]]]
    )
    bi = redundancy.block_influence(states)
    assert bi.tolist() == pytest.approx([1 - (0.0 + 1.0) / 2, 0.0])
    rng = np.random.default_rng(0)
    random = rng.normal(size=(4, 5, 3))
    expected = [
        1 - np.mean([_by_hand_cosine(random[j - 1, t], random[j, t]) for t in range(5)])
        for j in range(1, 4)
    ]
    assert redundancy.block_influence(torch.tensor(random)).tolist() == pytest.approx(expected)


def test_angular_distance_is_the_mean_angle_over_pi() -> None:
    rng = np.random.default_rng(1)
    states = rng.normal(size=(5, 6, 4))
    for n in (1, 2, 4):
        expected = [
            np.mean([math.acos(_by_hand_cosine(states[j, t], states[j + n, t])) for t in range(6)])
            / math.pi
            for j in range(5 - n)
        ]
        got = redundancy.angular_distances(torch.tensor(states), n)
        assert got.tolist() == pytest.approx(expected)
    opposite = torch.tensor([[[1.0, 0.0]], [[-1.0, 0.0]]])
    assert redundancy.angular_distances(opposite, 1).tolist() == pytest.approx([1.0])


def test_each_signal_drops_what_its_definition_says() -> None:
    assert redundancy.choose_layers("top_k", 2, depth=6) == [5, 6]
    bi = torch.tensor([0.5, 0.1, 0.4, 0.05, 0.3, 0.9])
    assert redundancy.choose_layers("block_influence", 2, depth=6, scores=bi) == [2, 4]
    cka = torch.tensor([float("nan"), 0.99, 0.5, 0.97, 0.2, 0.1])
    assert redundancy.choose_layers("cka", 2, depth=6, scores=cka) == [2, 4]
    distances = torch.tensor([0.3, 0.2, 0.05, 0.4, 0.5])  # n = 2 on 6 layers: starts 0..4
    assert redundancy.choose_layers("angular_distance", 2, depth=6, scores=distances) == [3, 4]
    assert redundancy.choose_layers("cka", 0, depth=6, scores=cka) == []


def test_consecutive_cka_of_a_layer_that_only_rescales_is_one() -> None:
    rng = np.random.default_rng(2)
    first = torch.tensor(rng.normal(size=(50, 8)))
    pooled = torch.stack([first, 3 * first, torch.tensor(rng.normal(size=(50, 8)))])
    values = redundancy.consecutive_cka(pooled)
    assert values[0] == pytest.approx(1.0)
    assert values[1] < 0.5


def test_cka_with_last_matches_the_formula_by_hand() -> None:
    rng = np.random.default_rng(3)
    pooled = torch.tensor(rng.normal(size=(4, 40, 6)))
    pooled[0] = 5.0  # a constant layer (a first-token embedding): CKA undefined

    def by_hand(x: np.ndarray, y: np.ndarray) -> float:  # Kornblith et al. (2019), eq. for linear
        x, y = x - x.mean(0), y - y.mean(0)
        return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))

    values = redundancy.cka_with_last(pooled)
    expected = [by_hand(pooled[i].numpy(), pooled[3].numpy()) for i in (1, 2, 3)]
    assert values.tolist() == pytest.approx(expected, rel=1e-10)
    assert values[-1] == pytest.approx(1.0)
    assert torch.isfinite(redundancy.consecutive_cka(pooled)[1:]).all()
    assert torch.isnan(redundancy.consecutive_cka(pooled)[0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: redundancy.block_influence(torch.zeros(1, 3, 2)), "shape"),
        (lambda: redundancy.angular_distances(torch.ones(3, 2, 2), 3), "from 1 to 2"),
        (lambda: redundancy.choose_layers("random", 1, depth=3), "unknown signal"),
        (lambda: redundancy.choose_layers("cka", 1, depth=3), "needs its scores"),
        (lambda: redundancy.choose_layers("top_k", 4, depth=3), "from 0 to 3"),
    ],
)
def test_bad_input_is_refused(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_budget_grid_scores_every_budget_of_shallow_models_and_a_grid_of_deep_ones() -> None:
    from layersim.stats.redundancy import budget_grid

    assert budget_grid(6) == [0, 1, 2, 3, 4, 5, 6]
    assert budget_grid(4) == [0, 1, 2, 3, 4]
    assert budget_grid(12) == list(range(0, 13, 2))
    assert budget_grid(30) == list(range(0, 31, 5))
    assert budget_grid(13) == [0, 3, 6, 9, 12, 13]  # the full depth is always scored
    with pytest.raises(ValueError, match="positive number of layers"):
        budget_grid(0)
