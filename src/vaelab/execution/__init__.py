"""Running training anywhere: work units, executors (here, a pool, Ray), progress, status."""
