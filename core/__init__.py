"""The base layer every other package may use: config, errors and the run-directory format.

It imports nothing from albprobe's other packages (enforced by import-linter, see pyproject.toml).
"""

__version__ = "0.1.0"
