"""etrack: eTrac fleet GPS data into PostgreSQL."""

__version__ = "0.1.0"
