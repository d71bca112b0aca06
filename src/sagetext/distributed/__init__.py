"""Data-parallel training over GPUs and hosts: launching workers (``launch``) and what a
worker needs once it runs (``runtime``)."""
