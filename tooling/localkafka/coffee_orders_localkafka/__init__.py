"""Run a real Apache Kafka (KRaft) on this machine from the official jars on Maven Central."""

from .cluster import LocalKafka, LocalKafkaError, NodeStatus

__all__ = ["LocalKafka", "LocalKafkaError", "NodeStatus"]
