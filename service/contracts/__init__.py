"""Contracts the serving side owns and the offline writers import: bundle manifest, graph
signatures, Redis key layout."""
