"""The image config's JSON Schema (docs/image.schema.json) against the configs
we ship and the bad configs the loader rejects.

- every file in data/images, and the every-key config of the unit test
  (tests/data/image-config-full.yaml), validates;
- every case in tests/data/image-config-bad.txt (the table the loader's unit
  test, tests/unit/image_config_test.c, runs) is rejected by the schema too,
  unless the case says "!schema" (a rule JSON Schema cannot express, such as
  a duplicate key or a host file that must exist);
- the schema itself is valid draft 2019-09 and says additionalProperties:
  false on every object it describes.
"""

import json
import pathlib

import jsonschema
import pytest
import yaml

SRCROOT = pathlib.Path(__file__).resolve().parents[3]
SCHEMA = json.loads((SRCROOT / "docs" / "image.schema.json").read_text())
VALIDATOR = jsonschema.Draft201909Validator(SCHEMA)
BASE = 'name: t\nversion: "1"\npackages: {install: [bash]}\n'
EXAMPLES = sorted((SRCROOT / "data" / "images").glob("*.yaml"))


def bad_cases():
    cases = []
    for line in (SRCROOT / "tests" / "data" / "image-config-bad.txt").read_text().splitlines():
        if line.startswith("### "):
            head = line[4:]
            schema_ok = not head.startswith("!schema ")
            cases.append([head.removeprefix("!schema "), schema_ok, ""])
        elif cases and not line.startswith("#"):
            cases[-1][2] += BASE if line == "@BASE" else line + "\n"
    return cases


CASES = bad_cases()


def test_schema_is_valid_2019_09():
    jsonschema.Draft201909Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2019-09/schema"


def objects(node, where="#"):
    """Every sub-schema that describes an object by its properties."""
    if isinstance(node, dict):
        if "properties" in node:
            yield where, node
        for k, v in node.items():
            # if/then/not narrow an object described (and closed) elsewhere:
            # a closed condition would reject every other key.
            if k not in ("if", "then", "else", "not"):
                yield from objects(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from objects(v, f"{where}/{i}")


def test_every_object_is_closed():
    found = list(objects(SCHEMA))
    assert len(found) > 15
    for where, node in found:
        assert node.get("additionalProperties") is False, where


def test_examples_exist():
    assert {p.name for p in EXAMPLES} >= {"minimal-server.yaml", "container.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path):
    doc = yaml.safe_load(path.read_text())
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)]
    assert errors == []


def test_full_config_validates():
    """The config the unit test loads with every key set."""
    doc = yaml.safe_load((SRCROOT / "tests" / "data" / "image-config-full.yaml").read_text())
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)]
    assert errors == []


def test_table_is_read():
    assert len(CASES) >= 40
    assert sum(1 for c in CASES if not c[1]) <= 6


def test_base_is_valid():
    """The cases differ from a valid config only in what they break."""
    assert VALIDATOR.is_valid(yaml.safe_load(BASE))


@pytest.mark.parametrize("expect,text", [(c[0], c[2]) for c in CASES if c[1]],
                         ids=[c[0][:60] for c in CASES if c[1]])
def test_bad_config_rejected_by_schema(expect, text):
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        assert "invalid YAML" in expect
        return
    assert not VALIDATOR.is_valid(doc), f"schema accepts a config the loader rejects ({expect}):\n{text}"


def schema_keys(node):
    """Every property name the schema defines."""
    if isinstance(node, dict):
        for k, v in node.get("properties", {}).items():
            yield k
            yield from schema_keys(v)
        for k, v in node.items():
            if k != "properties":
                yield from schema_keys(v)
    elif isinstance(node, list):
        for v in node:
            yield from schema_keys(v)


def config_keys(node):
    if isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from config_keys(v)
    elif isinstance(node, list):
        for v in node:
            yield from config_keys(v)


def test_full_config_uses_every_schema_key():
    """With test_full_config_validates: the schema and the loader's every-key
    config (whose every field the unit test checks) name the same keys."""
    doc = yaml.safe_load((SRCROOT / "tests" / "data" / "image-config-full.yaml").read_text())
    missing = set(schema_keys(SCHEMA)) - set(config_keys(doc))
    assert missing == set()
