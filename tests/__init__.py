"""orderflow's tests: unit (stub broker, SQLite), integration (RabbitMQ, PostgreSQL), bench."""
