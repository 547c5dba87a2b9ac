"""Offline side: data, item knowledge, text encoders, nearline publishing."""
