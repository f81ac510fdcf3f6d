"""How well embeddings match human similarity judgements: used by ``o2v demo`` and the bench."""
