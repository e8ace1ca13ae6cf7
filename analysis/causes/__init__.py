"""Causes of proxy failures, one module each (registry.py lists them)."""
