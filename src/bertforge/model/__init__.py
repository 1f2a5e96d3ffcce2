"""The BERT network in PyTorch: config, layers, heads, and the fast paths they use.

Knows nothing of text, files or jobs.
"""
