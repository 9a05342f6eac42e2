"""Reproducible studies built from the library, each one command that writes a report."""
