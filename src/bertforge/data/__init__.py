"""From files and text to batches: labeled data, corpora, pretraining samples, batching."""
