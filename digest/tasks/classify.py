"""Tasks: classify."""
__all__: list[str] = []
