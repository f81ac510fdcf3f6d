"""Data preparation: readers, tokenizer, vocabulary, atomic writers and the ``prepare`` pipeline."""
