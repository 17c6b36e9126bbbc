"""The one image's ECR repository."""

from __future__ import annotations

import json

import pulumi_aws as aws

from ops.infra.config import InfraConfig


def build_repository(config: InfraConfig) -> aws.ecr.Repository:
    """The one image's repository: scanned on push, tags immutable (a tag names one
    build, so a deploy and its rollback mean exactly what they say)."""
    repository = aws.ecr.Repository(
        "app",
        name=config.name,
        image_tag_mutability="IMMUTABLE",
        image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
            scan_on_push=True
        ),
        encryption_configurations=[
            aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")
        ],
        force_delete=not config.deletion_protection,
    )
    # Only untagged layers expire: a tagged image may still run somewhere, or be a rollback.
    untagged = {
        "rulePriority": 1,
        "description": "untagged images after 14 days",
        "selection": {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 14,
        },
        "action": {"type": "expire"},
    }
    aws.ecr.LifecyclePolicy(
        "app", repository=repository.name, policy=json.dumps({"rules": [untagged]})
    )
    return repository
