"""The training loop and the jobs built on it."""
