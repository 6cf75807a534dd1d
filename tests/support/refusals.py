"""The bodies of the fair-use refusals (429) the tests expect, exactly as the API
answers them (services/http/fair_use.py)."""

KEY_LIMIT = {"message": "Too many requests with this API key; slow down"}
ADDRESS_LIMIT = {
    "message": "Too many failed authentications from this address; slow down"
}
WORK_LIMIT = {
    "message": "This business already has 1 imports, exports, audits, as_of"
    " queries or reports running; retry when one has finished"
}
