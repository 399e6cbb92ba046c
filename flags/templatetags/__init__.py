"""Template tags of the flag admin."""
