"""Which logged quantities are better when larger: what ``mode: auto`` of a callback and
``kconf runs`` go by. Plain Python (no NumPy): the CLI imports the callbacks before it sets
BLAS's thread count.
"""
from __future__ import annotations

#: Log names (or parts of them) of the metrics whose larger values are better (Keras's
#: ``_direction = "up"``); a test checks them against ``kconf.engine.metric_classes``.
HIGHER_IS_BETTER: tuple[str, ...] = (
    "acc", "auc", "binary_accuracy", "categorical_accuracy", "cosine_similarity",
    "f1_score", "fbeta_score", "mean_io_u", "precision", "precision_at_recall", "r2_score",
    "recall", "recall_at_precision", "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "top_k_categorical_accuracy",
)


def higher_is_better(log_name: str) -> bool:
    """Whether a logged quantity is better when larger, from its name.

    Args:
        log_name: e.g. ``val_auc``, ``out_precision``, ``f1_score``, ``val_loss``.

    Returns:
        True for the names of metrics better when larger (``HIGHER_IS_BETTER`` in the name,
        after any ``val_``); False for anything with ``loss`` in it, errors and divergences.
        A metric renamed with ``name:`` keeps its direction only if its name says it.
    """
    name = log_name.removeprefix("val_")
    return "loss" not in name and any(word in name for word in HIGHER_IS_BETTER)
