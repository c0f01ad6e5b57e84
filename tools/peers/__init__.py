"""Benchmark peers in other frameworks: ``from peers import deconvnet_torch`` (needs PyTorch)."""
