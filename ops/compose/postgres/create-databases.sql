-- One PostgreSQL server, one database per service (ops/compose.yaml says why).
-- The image runs this once, as POSTGRES_USER, when it creates an empty data volume.
CREATE DATABASE orders;
CREATE DATABASE invoices;
