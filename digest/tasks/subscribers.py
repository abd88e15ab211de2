"""Tasks: subscribers."""
__all__: list[str] = []
