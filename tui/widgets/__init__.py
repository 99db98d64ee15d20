"""One widget per module; each takes plain view data and renders it (no core objects inside)."""
