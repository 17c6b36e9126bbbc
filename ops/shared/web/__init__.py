"""The kernel's web: the Falcon app every front is built on, request bodies, problems,
authentication, the metrics exposition, OpenAPI documents.
"""
