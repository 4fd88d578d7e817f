"""Command modules: each defines ``register(subparsers)``; shipway.cli loads them all."""
