"""Preprocessing (pure functions), the unpaired slice dataset and the embedded demo data."""
