"""Shared helpers for tests and benchmarks that run against a real cluster (see kube.py)."""
