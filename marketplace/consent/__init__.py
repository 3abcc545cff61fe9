"""Consent: the compliance ledger and the one set of eligibility rules."""
