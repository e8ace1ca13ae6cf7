"""Shared helpers of the compare tests: the JUnit schema and a validator."""

from __future__ import annotations

from pathlib import Path

import pytest

JUNIT_XSD = Path(__file__).parent / "data" / "junit.xsd"


@pytest.fixture(scope="session")
def junit_schema():
    import xmlschema

    return xmlschema.XMLSchema(JUNIT_XSD)
