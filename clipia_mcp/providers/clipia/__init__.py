"""Clipia's generation queue (the default provider) over the official ``clipia`` SDK."""
