"""Descriptions in the published documents (OpenAPI, AsyncAPI), independent of how a
library treats docstrings, and the bytes both documents are published as.

msgspec copies each struct's docstring into its JSON schema as `description`; whether
it de-indents the text changed between releases (0.23 does), which changed the
generated documents under an unchanged lock-less install. Both documents therefore
clean every description themselves with `inspect.cleandoc`, so the text depends on our
source alone.
"""

from __future__ import annotations

import inspect

import msgspec


def clean_descriptions(schema: object) -> object:
    """The schema with every `description` string passed through `inspect.cleandoc`."""
    if isinstance(schema, dict):
        return {
            key: inspect.cleandoc(value)
            if key == "description" and isinstance(value, str)
            else clean_descriptions(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [clean_descriptions(value) for value in schema]
    return schema


def published(document: object) -> bytes:
    """A document as its committed file holds it and its public route serves it:
    indented JSON with a final newline."""
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"
