"""Attempt 1's overfit-prone recipe, defined once for the demo and the bench's recorded curves."""

from __future__ import annotations

from training.demo.options import Size

OVERFIT_LAYER = "the demo's overfit-prone first attempt"


def overfit_prone_recipe(dims: int, epochs: int, *, network: str = "pooled_embedding",
                         dropout: float = 0.0) -> dict[str, object]:
    """The overfit-prone recipe, defined once: the demo's attempt 1 and the bench's recorded curves.

    No dropout, a pooled-embedding encoder whose token embeddings are its only encoder weights
    (Object2Vec's pooled_embedding has no projection, reference section 10e), one tanh MLP layer,
    small batches and a fast learning rate (0.003): the validation loss turns up within a few
    epochs and stays up, so the monitor sees a rise before Object2Vec's own early stopping
    (patience 5 below) ends the job. ``make demo``'s size (128-d on the whole training split) was
    chosen by the seed study in docs/benchmarks.md (``python -m bench.demo_seeds``): there dropout
    0.1 also reaches a lower validation loss, so the relaunch serves a better model. At 64-d on the
    whole split the curve only wobbled around its minimum (the detector rightly leaves it alone);
    on the 2,000-pair quick sample it rises, but every higher dropout is worse. Sharper-rising
    variants (a wider or deeper MLP, other learning rates, STS-B as six classes) let the in-flight
    judge catch the rise, but made the higher dropout lose: the screen is in docs/benchmarks.md.
    """
    return {
        "enc0_network": network,
        "enc1_network": "enc0",
        "enc0_token_embedding_dim": dims,
        "enc_dim": dims,
        "mlp_dim": dims,
        "mlp_layers": 1,
        "mlp_activation": "tanh",
        "learning_rate": 0.003,
        "mini_batch_size": 32,
        "epochs": epochs,
        "dropout": dropout,
        "early_stopping_patience": 5,
    }


def overfit_prone_hyperparameters(size: Size, epochs: int | None) -> dict[str, object]:
    """Attempt 1's layer over the settings' and the dataset's hyperparameters: prone to overfit.

    The launcher validates the merged result.
    """
    return overfit_prone_recipe(size.dims, epochs or size.epochs)
