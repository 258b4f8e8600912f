"""Code shared by both services: settings, logging, Kafka and gRPC scaffolding."""
