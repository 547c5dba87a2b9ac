"""The reaseq command."""
