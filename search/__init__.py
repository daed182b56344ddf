"""Distributed random-restart search over compiled NTPT models."""
