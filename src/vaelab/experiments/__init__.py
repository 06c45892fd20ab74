"""The study's four experiments, one module each; `common` holds what they share."""
