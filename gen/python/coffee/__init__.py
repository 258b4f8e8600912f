"""Generated gRPC code for the coffee orders contract."""
