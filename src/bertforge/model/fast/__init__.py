"""The CPU and GPU fast paths, each small and tested against the plain one it replaces."""
