"""Registry metadata: server.json validates offline and agrees with the package and README."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, FormatChecker

import clipia_mcp

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT.parent / "shared" / "reference" / "server.schema.json"


def load_server_json() -> dict:
    return json.loads((ROOT / "server.json").read_text())


def test_server_json_validates_against_the_registry_schema() -> None:
    if not SCHEMA.exists():
        pytest.skip("shared/reference is not beside this checkout")
    errors = list(Draft7Validator(json.loads(SCHEMA.read_text()), format_checker=FormatChecker())
                  .iter_errors(load_server_json()))
    assert errors == []


def test_server_json_rejects_a_broken_copy() -> None:
    if not SCHEMA.exists():
        pytest.skip("shared/reference is not beside this checkout")
    doc = load_server_json()
    doc["description"] = "x" * 101
    doc["packages"][0]["version"] = "latest"
    validator = Draft7Validator(json.loads(SCHEMA.read_text()), format_checker=FormatChecker())
    assert len(list(validator.iter_errors(doc))) >= 1


def test_versions_marker_and_key_metadata_agree() -> None:
    doc = load_server_json()
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1)  # type: ignore[union-attr]
    assert doc["version"] == version == clipia_mcp.__version__ == doc["packages"][0]["version"]
    readme = (ROOT / "README.md").read_text()
    assert f"mcp-name: {doc['name']}" in readme
    pkg = doc["packages"][0]
    assert (pkg["registryType"], pkg["identifier"], pkg["runtimeHint"], pkg["transport"]) == (
        "pypi", "clipia-mcp", "uvx", {"type": "stdio"})
    key = next(v for v in pkg["environmentVariables"] if v["name"] == "CLIPIA_API_KEY")
    assert key["isRequired"] is True and key["isSecret"] is True
    assert len(doc["description"]) <= 100
