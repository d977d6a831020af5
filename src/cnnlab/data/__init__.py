"""Datasets, one module each, all ending as uint8 tensors in memory (see ``cache.py``)."""
