"""Serving benchmark: the service against a naive PyTorch baseline under open-loop load."""
