"""The deal: license requests, licenses, extracts, delivery, compliance, usage, billing, payouts."""
