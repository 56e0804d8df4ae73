"""Presentation: figures and the report, drawn from the tidy tables (no estimation)."""
