"""Attention kernels of the ranking service: references, accelerated versions, dispatchers.

Imports nothing else of the project.
"""
