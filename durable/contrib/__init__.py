"""Optional integrations with web frameworks and other libraries (each needs its extra)."""

__all__: list[str] = []
