"""The corpus on the way in: the X API v2 format as typed records, and a synthetic corpus."""
