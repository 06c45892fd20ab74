"""Training: the run folder's checkpoints, run identity, the stacked step, the one group trainer."""
