"""The Object2Vec network in PyTorch: two encoders, a comparator and an MLP head."""
