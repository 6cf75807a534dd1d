"""The parameters of operations (services/api_docs/operation.py): query, header and
path, as the routes read them.

Every query parameter reads empty (or blank) as absent, so its schema allows a blank
string beside its own. Numbers in the query are at most 18 digits (they fit a
bigint), as services/http/edge.whole_number reads them.
"""

from __future__ import annotations

BLANK = {"type": "string", "pattern": "^\\s*$"}
WHOLE = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}


def query(name: str, schema: dict[str, object], description: str) -> dict[str, object]:
    """A query parameter; every one reads empty (or blank) as absent."""
    either = {"type": _types(schema), "anyOf": [schema, BLANK]}
    return _parameter("query", name, either, description)


def _types(schema: dict[str, object]) -> object:
    """The JSON type(s) a parameter's schema or blank allows (for readers that show a
    parameter's type only from its top-level `type`)."""
    alternatives = schema.get("anyOf", [schema])
    assert isinstance(alternatives, list)
    types = [
        alternative.get("type", "string")
        for alternative in alternatives
        if isinstance(alternative, dict)
    ]
    unique = list(dict.fromkeys([*types, "string"]))
    return unique[0] if len(unique) == 1 else unique


def header(name: str, schema: dict[str, object], description: str) -> dict[str, object]:
    return _parameter("header", name, schema, description)


def path_id(name: str, description: str) -> dict[str, object]:
    """A numeric id in the path (anything else answers 404)."""
    schema: dict[str, object] = {"type": "integer", "minimum": 1}
    return _parameter("path", name, schema, description, required=True)


def path_text(name: str, description: str | None = None) -> dict[str, object]:
    """A string in the path (an import id, a bid, a file name)."""
    return _parameter("path", name, {"type": "string"}, description, required=True)


def _parameter(
    place: str,
    name: str,
    schema: dict[str, object],
    description: str | None,
    required: bool = False,
) -> dict[str, object]:
    parameter: dict[str, object] = {"name": name, "in": place, "required": required}
    if description is not None:
        parameter["description"] = description
    parameter["schema"] = schema
    return parameter


CLIENT_ID = path_id("id", "The client's id.")
