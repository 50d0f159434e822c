"""The operator layer: what a person runs (the CLI, the local stack, replay, erasure, tag preview).

Nothing in the pipeline imports from here; this package imports the pipeline."""
