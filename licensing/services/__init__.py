"""Services of the licensing app: every write and state change of the deal lifecycle."""
