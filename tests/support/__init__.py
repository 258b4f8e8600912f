"""Helpers for tests: bounded waits, service processes, logs shown on failure."""
