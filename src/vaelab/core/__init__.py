"""The bottom layer: errors, atomic files, folder locks, the run and study folders' layout,
settings (dataclasses, presets), devices and small shared helpers. Imports nothing of vaelab."""

__version__ = "0.1.0"
