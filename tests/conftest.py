"""Shared fixtures: each concern lives in its own fixtures_*.py plugin module."""

pytest_plugins = ["fixtures_db", "fixtures_simulator", "fixtures_cli"]
