"""The consumer daemon: reads orders from Kafka, logs them, reports errors over gRPC."""
