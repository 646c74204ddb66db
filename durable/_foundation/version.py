"""The package version, in one place (metrics and ``durable.__version__`` read it)."""

__all__ = ["VERSION"]

VERSION = "0.1.0"
