"""Tasks: sending."""
__all__: list[str] = []
