"""The shapes of the answers the end-to-end tests compare with: each body's fields in
the seed's order (the API the service replaced, whose clients parse these bodies), the
timestamp format, and the Laravel 422 body every validation error comes in."""

from __future__ import annotations

# The seed's client object, field for field and in the seed's order.
CLIENT_FIELDS = [
    "id",
    "owner_id",
    "business_id",
    "first_name",
    "last_name",
    "phone_number",
    "business_name",
    "business_address",
    "business_phone",
    "business_location",
    "business_email",
    "created_at",
    "updated_at",
    "account_id",
    "category",
    "category_id",
    "deposit_amount",
    "deposit_account_id",
    "archived",
    "transactions",
    "unformated_balance",
    "balance",
    "total_debit",
    "total_credit",
]
CATEGORY_FIELDS = [
    "id",
    "business_id",
    "name",
    "description",
    "created_at",
    "updated_at",
    "archived",
    "customer_count",
]
SUMMARY_FIELDS = [
    "total_deposits",
    "customer_count",
    "archived_customers",
    "unarchived_customers",
    "total_balance",
]
TRANSACTION_FIELDS = [
    "id",
    "client_id",
    "type",
    "amount",
    "date",
    "description",
    "reference",
    "created_at",
    "balance_after",
    "reversed",
    "reversal_of",
]
DEPOSIT_FIELDS = [
    "id",
    "client_id",
    "type",
    "amount",
    "date",
    "description",
    "created_at",
    "deposit_after",
    "reversed",
    "reversal_of",
]
TIMESTAMP_PATTERN = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z"
INVALID = "The given data was invalid."


def invalid(errors: dict[str, list[str]]) -> dict[str, object]:
    """The Laravel 422 body for the given field errors."""
    return {"message": INVALID, "errors": errors}


# The seed's sample create request, field for field.
SEED_REQUEST = {
    "business_name": "Tech Solutions Inc.",
    "business_address": "123 Tech Street, Silicon Valley, CA",
    "business_phone": "+1-800-555-0199",
    "business_email": "contact@techsolutions.com",
    "first_name": "John",
    "last_name": "Doe",
    "phone_number": "+1-800-555-0100",
}
