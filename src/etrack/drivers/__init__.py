"""Drivers and their legal working day (Lei 13.103, CTB art. 67-C): identities
from the provider's trips, attribution of the detected trips, working days and
violations, the monthly ficha de trabalho (docs/drivers.md)."""
