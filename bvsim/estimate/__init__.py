"""Estimators: numpy functions, arrays in and arrays out, no I/O. The closed forms'
tables (:func:`.theory.theory_table`, :func:`.anova_theory.anova_theory_table`) also take
a Config and return DataFrames."""
