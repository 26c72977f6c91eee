"""Defaults shown in --help, kept import-free so --help stays fast."""

DEFAULT_CONCURRENCY = 50
