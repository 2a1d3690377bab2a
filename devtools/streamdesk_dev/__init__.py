"""Development and test tooling: the local stack (`make run`) and local Postgres/Redis servers.

Not part of any service image: the Dockerfiles install one service package each
(``uv sync --package <service>``), and this package is only in the workspace's dev group.
"""
