"""Vendored data files (see README.md here for provenance)."""
