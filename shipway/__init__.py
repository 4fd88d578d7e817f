"""Shipway: a self-hosted git-push-to-deploy platform."""

__version__ = "0.1.0"
