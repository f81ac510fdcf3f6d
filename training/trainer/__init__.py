"""The local Object2Vec trainer (PyTorch, CPU), runnable as ``python -m training.trainer``."""
