"""Benchmarks: ``python -m bench`` (``make bench``) measures the claims in docs/benchmarks.md.

Sections: ``detection`` (divergence detectors on a labelled curve suite), ``cost`` (epochs to a
good model per strategy, replayed over recorded curves), ``throughput`` (trainer, inference
server vs all-MiniLM-L6-v2, ``cdk synth`` ratio), ``quality`` (STS-B test Spearman).
"""
