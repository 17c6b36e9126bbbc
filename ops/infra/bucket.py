"""The logs bucket: the load balancer's access logs (under ``alb/``), private,
encrypted, versioned, and expiring."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from ops.infra.config import InfraConfig

ACCESS_LOG_PREFIX = "alb"


def build_logs_bucket(config: InfraConfig) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
    """A private, encrypted, versioned bucket whose logs expire; returns it and its policy."""
    protected = config.deletion_protection
    bucket = aws.s3.Bucket(
        "logs", bucket_prefix=f"{config.name}-logs-", force_destroy=not protected
    )
    aws.s3.BucketOwnershipControls(
        "logs",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
    )
    public_access = aws.s3.BucketPublicAccessBlock(
        "logs",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    # SSE-S3: load balancer access logs cannot be written with a KMS key.
    aws.s3.BucketServerSideEncryptionConfiguration(
        "logs",
        bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
    )
    versioning = aws.s3.BucketVersioning(
        "logs",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
            status="Enabled"
        ),
    )
    aws.s3.BucketLifecycleConfiguration(
        "logs",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-logs",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    days=config.access_log_expiry_days
                ),
                # Versioning keeps overwritten or deleted objects: they go after a week.
                noncurrent_version_expiration={"noncurrent_days": 7},
                abort_incomplete_multipart_upload={"days_after_initiation": 1},
            )
        ],
        opts=pulumi.ResourceOptions(depends_on=[versioning]),
    )
    document = pulumi.Output.all(
        bucket.arn,
        aws.get_caller_identity_output().account_id,
        aws.elb.get_service_account_output().arn,
    ).apply(lambda args: json.dumps(log_delivery_policy(*args)))
    policy = aws.s3.BucketPolicy(
        "logs",
        bucket=bucket.id,
        policy=document,
        # A policy put before the block is in place could be public for a moment.
        opts=pulumi.ResourceOptions(depends_on=[public_access]),
    )
    return bucket, policy


def log_delivery_policy(bucket_arn: str, account_id: str, elb_account_arn: str) -> dict[str, Any]:
    """Load balancers may write access logs under ``alb/``; nothing reaches the bucket
    without TLS. Regions older than 2022 deliver as the regional ELB account, newer
    ones as the log-delivery service principal: both are allowed."""
    logs = f"{bucket_arn}/{ACCESS_LOG_PREFIX}/AWSLogs/{account_id}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LoadBalancerAccessLogs",
                "Effect": "Allow",
                "Principal": {"AWS": elb_account_arn},
                "Action": "s3:PutObject",
                "Resource": logs,
            },
            {
                "Sid": "LoadBalancerAccessLogsService",
                "Effect": "Allow",
                "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": logs,
            },
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }
