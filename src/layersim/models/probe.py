"""Linear heads fitted on a frozen model: the probe baseline and the re-fitted head.

Two questions share this machinery. Does fine-tuning beat a linear probe on the frozen pretrained
model (is the task learned)? And after truncation, is the information still there when the old
head fails (E1)? In both, the model is frozen and only a new linear map is fitted in place of the
model's last linear layer (BERT: the classifier on the pooled ``[CLS]`` output; RoBERTa/ELECTRA/
MPNet: the ``out_proj`` of their classification head; decoders: the ``score`` layer at the last
real token), on what that layer reads:

* classification: multinomial logistic regression (L2 strength by cross-validation),
* regression: ridge regression (strength by cross-validation),
* multiple choice: one linear scorer shared by the choices, softmax over them (conditional logit),
  fitted by L-BFGS with its L2 strength chosen on a held-out part of the training rows.

Features are standardised on the training rows. :func:`head_inputs` also returns the mean of the
last hidden states over non-padding tokens, a second probe baseline.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from layersim.tasks import Task, collator, compute_metrics, get_task

__all__ = [
    "LinearHead",
    "fit_linear_head",
    "head_inputs",
    "last_linear",
    "last_real_token",
    "probe_scores",
]


def last_linear(model: nn.Module) -> nn.Linear:
    """The model's last linear layer of its task head (``classifier``, ``score``, ...)."""
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.split(".")[0] in ("classifier", "score"):
            found = module
    if found is None:
        raise ValueError(
            f"{type(model).__name__} has no linear task head named 'classifier' or 'score'; "
            "pass a model loaded with its head (AutoModelForSequenceClassification or "
            "AutoModelForMultipleChoice, e.g. layersim.pipeline.finetune.load_model)"
        )
    return found


def head_inputs(
    model: nn.Module,
    tokenizer: Any,
    task: str | Task,
    encoded: Any,
    *,
    batch_size: int = 64,
    with_logits: bool = False,
) -> tuple[np.ndarray, ...]:
    """What the last linear layer reads, the mean-pooled last layer, and the labels.

    Parameters
    ----------
    model : PreTrainedModel
        A model with its task head (it is not changed; eval mode during the call).
    tokenizer, task, encoded
        The tokenizer, the task, and a split encoded by :func:`layersim.tasks.encode`.
    batch_size : int
        Examples per forward pass.
    with_logits : bool
        Also return the model's own outputs (its unchanged head's logits), from the same pass.

    Returns
    -------
    head, mean, labels[, logits] : numpy arrays
        ``(n, width)`` float32 (multiple choice: ``(n, choices, width)``), same for the mean of
        the last hidden states over non-padding tokens (NaN for a model without layers, which
        reports no hidden states), the labels ``(n,)``, and the logits.
    """
    task = get_task(task)
    layer = last_linear(model)
    captured: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, args, _o: captured.append(args[0].detach()))
    collate = collator(task, tokenizer)
    device = next(model.parameters()).device
    heads, means, labels, logits = [], [], [], []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(encoded), batch_size):
                batch = collate(
                    [encoded[i] for i in range(start, min(start + batch_size, len(encoded)))]
                )
                labels.append(batch.pop("labels").numpy())
                batch = {key: value.to(device) for key, value in batch.items()}
                captured.clear()
                output = model(**batch, output_hidden_states=True)
                shape = (
                    output.logits.shape[:-1]
                    if task.kind != "multiple_choice"
                    else output.logits.shape
                )
                head = captured[-1].float()
                if head.dim() == 3:  # a decoder's head scores every position: keep the last real
                    head = last_real_token(head, batch["attention_mask"])
                heads.append(head.reshape(*shape, -1).cpu().numpy())
                logits.append(output.logits.float().cpu().numpy())
                if not output.hidden_states:  # a model truncated to no layer reports none
                    means.append(np.full((*shape, heads[-1].shape[-1]), np.nan, np.float32))
                    continue
                last = output.hidden_states[-1].float()
                mask = batch["attention_mask"].reshape(last.shape[:2]).unsqueeze(-1).float()
                pooled = (last * mask).sum(1) / mask.sum(1).clamp(min=1)
                means.append(pooled.reshape(*shape, -1).cpu().numpy())
    finally:
        hook.remove()
        model.train(was_training)
    found = (np.concatenate(heads), np.concatenate(means), np.concatenate(labels))
    return (*found, np.concatenate(logits)) if with_logits else found


def last_real_token(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``(rows, seq, width)`` -> ``(rows, width)`` at each row's last non-padding position: what
    a decoder's sequence-classification head reads (right padding; choices flattened)."""
    mask = attention_mask.reshape(states.shape[:2]).bool()
    positions = torch.arange(mask.shape[1], device=mask.device)
    last = torch.where(mask, positions, -1).amax(dim=1)
    return states[torch.arange(states.shape[0], device=states.device), last]


@dataclass
class LinearHead:
    """A fitted linear head: ``predict(features)`` gives logits, a regression output or choice
    scores, in the form :func:`layersim.tasks.compute_metrics` takes."""

    task: Task
    mean: np.ndarray
    scale: np.ndarray
    model: Any

    def predict(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        if self.task.kind == "classification":
            return self.model.predict_log_proba(x)
        if self.task.kind == "regression":
            return self.model.predict(x)
        weights, bias = self.model
        return x @ weights + bias  # (n, choices): one shared scorer per choice


def _standardise(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width = features.shape[-1]
    flat = features.reshape(-1, width).astype(np.float64)
    mean = flat.mean(0)
    scale = flat.std(0)
    scale[scale < 1e-12] = 1.0  # a constant feature carries nothing; leave it at zero
    return (features - mean) / scale, mean, scale


def _fit_choice_scorer(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Conditional logit: scores x @ w (+ b, which cancels in the softmax), L2 penalty l2."""
    xs = torch.as_tensor(x, dtype=torch.float64)
    ys = torch.as_tensor(y, dtype=torch.long)
    w = torch.zeros(xs.shape[-1], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(xs @ w, ys) + l2 * (w @ w)
        loss.backward()
        return loss

    optimiser.step(closure)
    return w.detach().numpy(), 0.0


def fit_linear_head(
    task: str | Task, features: np.ndarray, labels: np.ndarray, *, seed: int = 0
) -> LinearHead:
    """Fit the task's linear head on frozen features (see the module docstring).

    Parameters
    ----------
    task : str or Task
        Decides the kind of head.
    features : array
        ``(n, width)``, or ``(n, choices, width)`` for multiple choice.
    labels : array
        ``(n,)`` class ids, regression targets or the index of the right choice.
    seed : int
        Seeds the cross-validation folds and the held-out rows.

    Returns
    -------
    LinearHead
    """
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.model_selection import KFold, StratifiedKFold

    task = get_task(task)
    features = np.asarray(features)
    labels = np.asarray(labels)
    expected = 3 if task.kind == "multiple_choice" else 2
    if features.ndim != expected or len(features) != len(labels) or len(labels) < 10:
        raise ValueError(
            f"a {task.kind} head needs features of {expected} dimensions with one row per label "
            f"and at least 10 rows; got features {features.shape} and {len(labels)} labels"
        )
    x, mean, scale = _standardise(features)
    if task.kind == "classification":
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        model = LogisticRegressionCV(Cs=[1e-3, 1e-2, 1e-1, 1.0], cv=folds, max_iter=2000)
        with warnings.catch_warnings():  # scikit-learn 1.8 announces changes of its defaults
            warnings.simplefilter("ignore", FutureWarning)
            model.fit(x, labels.astype(np.int64))
    elif task.kind == "regression":
        model = RidgeCV(alphas=np.logspace(-2, 4, 13), cv=KFold(5, shuffle=True, random_state=seed))
        model.fit(x, labels.astype(np.float64))
    else:
        order = np.random.default_rng(seed).permutation(len(labels))
        held = order[: max(1, len(labels) // 5)]
        rest = order[len(held) :]
        best = None
        for l2 in (1e-4, 1e-3, 1e-2, 1e-1):
            weights, _ = _fit_choice_scorer(x[rest], labels[rest], l2)
            accuracy = float(np.mean((x[held] @ weights).argmax(-1) == labels[held]))
            if best is None or accuracy > best[0]:
                best = (accuracy, l2)
        model = _fit_choice_scorer(x, labels, best[1])
    return LinearHead(task, mean, scale, model)


def probe_scores(
    task: str | Task,
    train: tuple[np.ndarray, np.ndarray],
    evaluation: tuple[np.ndarray, np.ndarray],
    *,
    seed: int = 0,
) -> dict[str, float]:
    """Fit a linear head on ``train = (features, labels)`` and score it on ``evaluation``."""
    head = fit_linear_head(task, *train, seed=seed)
    return compute_metrics(task, head.predict(evaluation[0]), evaluation[1])
