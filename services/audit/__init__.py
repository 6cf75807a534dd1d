"""The auditor's tools: verify every chain and read-model figure from the events."""
