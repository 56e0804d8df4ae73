"""Estimators: pure numpy functions, arrays in and arrays out, no I/O."""
