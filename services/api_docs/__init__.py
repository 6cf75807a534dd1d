"""The HTTP API's documents: the OpenAPI document and the /docs page that shows it."""
