"""orderflow on AWS: the Pulumi program (``pulumi up`` in this directory).

It owns the cloud around the application, not the application: a VPC over two
availability zones (public subnets for the load balancer only), the ECR
repository of the one image, an ECS cluster on Fargate with a service per
process (the three HTTP fronts, two worker pools, two relays and Kong) and the
one-off ``orderflow migrate`` task, Amazon MQ for RabbitMQ, one RDS PostgreSQL
per service, the secrets they need in Secrets Manager, the internet-facing load
balancer in front of Kong, its access-log bucket, and the tasks' log groups.

- ``config``: the stack's sizes (``Pulumi.<stack>.yaml``) as a frozen dataclass
- ``network``: VPC, subnets, NAT; ``firewall``: the security groups, every allowed connection
- ``credentials``: generated secrets and their Secrets Manager entries
- ``data``: RDS PostgreSQL per service and Amazon MQ, with their URL secrets
- ``containers``: the processes and their container definitions; ``kong``: Kong's containers
- ``registry``: the ECR repository; ``tasks``: task definitions, log groups, ``iam`` roles
- ``services``: the ECS cluster, its services and the migrate task definition
- ``edge``: the load balancer; ``bucket``: the bucket its access logs land in
- ``stack``: ``build(config)``, the one place that wires them; ``__main__``: Pulumi's entry

README.md says how to deploy, migrate included.

The application never imports this package (an import-linter contract says so),
and nothing here runs at import time.
"""
