"""Reads of the releases domain, several of them depending on who asks."""
