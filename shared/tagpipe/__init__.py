"""tagpipe: server-side tagging in Python (collect -> transform -> deliver)."""

__version__ = "0.1.0"
