"""Estimators: numpy functions, arrays in and arrays out, no I/O. The closed forms of a
run (:func:`.theory.ridge_theory`, :func:`.anova_theory.anova_theory`) also take a
Config; :mod:`bvsim.io.theory` lays them out as theory.csv and anova.csv rows."""
