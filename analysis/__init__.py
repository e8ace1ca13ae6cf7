"""Offline analysis of run directories: parsers, correlation, verdict, reports."""
