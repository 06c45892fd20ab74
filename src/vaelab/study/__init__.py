"""`vaelab study`: the grid, preflight, experiments per seed, claims over training, results."""
