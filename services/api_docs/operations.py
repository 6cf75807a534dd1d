"""The documents' own routes (routes.py) as the OpenAPI document describes them:
the document itself, and the page that renders it with its assets."""

from __future__ import annotations

from services.api_docs.operation import content, public_document, public_get
from services.api_docs.parameters import path_text

OPERATIONS = [
    public_document("/api/v3/openapi.json", "openapi", "This document"),
    public_get(
        "documents",
        "/docs",
        "docs",
        "This document, as a page to read (assets served here)",
        content("HTML", "text/html", {"type": "string"}),
    ),
    public_get(
        "documents",
        "/docs/{asset}",
        "docsAsset",
        "The page's scripts",
        content("The asset", "*/*"),
        parameters=(path_text("asset"),),
        errors=(404,),
    ),
]
