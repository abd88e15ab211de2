"""Services: the code that writes. One module per area."""
