"""Figures, tables and reports of fine-tuning runs, on numpy arrays: no torch, no model, no files read."""
