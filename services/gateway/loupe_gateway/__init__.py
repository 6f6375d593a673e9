"""Gateway: serves the documented HTTP routes, holds no domain state, and speaks to the services
over Kafka."""
