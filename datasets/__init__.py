"""Simulated NSO sensor data, external data import, validation and person-level splits.

This package imports nothing from clients/, server/ or simulation/: data flows one way.
"""
