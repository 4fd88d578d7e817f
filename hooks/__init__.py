"""The git endpoint: smart-HTTP routing, our receive-pack handler, and the sideband."""
