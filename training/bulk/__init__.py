"""Bulk embedding (``o2v embed --corpus``): a whole corpus in, one embedding per sentence out.

``corpus`` reads the input and tokenizes it, ``output`` writes the result resumably and
atomically, ``local_run`` embeds in process with a ``model.tar.gz``.
"""
