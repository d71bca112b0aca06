"""Specs read by sagetext at run time (hyperparameters, metric definitions, server settings).

The TOML files beside this module are the single source of truth; this file only makes the
folder importable as ``sagetext.configs`` so the specs ship inside the wheel.
"""
