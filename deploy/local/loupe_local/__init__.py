"""Loupe's local runtime: a Kafka-protocol broker (Tansu) and every service as its own process."""
