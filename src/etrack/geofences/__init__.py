"""Geofences: customer sites and areas, the visits vehicles paid them over
the stored history, and their enter/exit events (docs/geofences.md)."""
