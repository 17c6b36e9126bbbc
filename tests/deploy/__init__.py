"""The local stack's files, checked without a Docker engine: ``Dockerfile`` and
``.dockerignore`` (hadolint, structure), ``ops/compose.yaml`` with ``.env.example`` (the
Compose specification's schema, ``docker-compose config``, and its agreement with the
settings, Kong, Prometheus and Grafana files), and ``ops/kong/render.py``.

A tool or file they need that is missing (hadolint, docker-compose, the schema) makes a
test skip with the reason; under ``CI=true`` it fails instead.
"""
