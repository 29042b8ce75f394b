"""Checkpoints: atomic writes, safe loading, the method modules' saved state, what resume continues."""
