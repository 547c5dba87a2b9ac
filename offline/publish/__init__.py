"""Nearline publishing: write a bundle's item vectors and the users' sequences into the stores
in the layout the serving side defines (``service.contracts.keys``, ``service.stores.embedded``)."""
