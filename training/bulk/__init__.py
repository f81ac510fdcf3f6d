"""Bulk embedding (``o2v embed --corpus``): a whole corpus in, one embedding per sentence out.

``corpus`` reads the input and tokenizes it, ``output`` writes the result resumably and
atomically, ``local_run`` embeds in process with a ``model.tar.gz``.
"""

# Defaults here, not in the modules that use them, so `o2v embed --help` can show them without importing torch.
DEFAULT_BATCH_SIZE = 512  # sentences per forward pass: big enough that per-batch overhead stops mattering
DEFAULT_PART_RECORDS = 10_000  # sentences per resumable part: a lost part costs seconds; 1M sentences are 100 parts
