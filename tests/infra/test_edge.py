"""The edge: the load balancer's listeners, and the bucket its access logs land in."""

from __future__ import annotations

from tests.infra import import_pulumi

import_pulumi()

from tests.infra.harness import CERTIFICATE, Deployment, deploy  # noqa: E402
from tests.infra.mocks import BALANCER, BUCKET, LISTENER, TARGET_GROUP, Recorded  # noqa: E402


def test_the_logs_bucket_is_private_encrypted_versioned_and_expiring(deployed: Deployment) -> None:
    bucket = deployed.one(BUCKET)

    block = _on_bucket(deployed, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
    assert all(
        block.inputs[flag] is True
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    sse = _on_bucket(
        deployed,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        bucket,
    )
    (rule,) = sse.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    versioning = _on_bucket(deployed, "aws:s3/bucketVersioning:BucketVersioning", bucket)
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    lifecycle = _on_bucket(
        deployed, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket
    )
    (expiry,) = lifecycle.inputs["rules"]
    assert expiry["status"] == "Enabled"
    assert expiry["expiration"]["days"] > 0
    assert expiry["noncurrentVersionExpiration"]["noncurrentDays"] > 0


def test_the_load_balancer_writes_its_access_logs_to_the_bucket(deployed: Deployment) -> None:
    logs = deployed.one(BALANCER).inputs["accessLogs"]

    assert logs["enabled"] is True
    assert logs["bucket"] == deployed.one(BUCKET).state["bucket"]


def test_with_a_certificate_http_redirects_to_https_which_forwards_to_kong() -> None:
    # Given the dev stack deployed with a certificate
    deployment = deploy("dev", {"orderflow:certificateArn": CERTIFICATE})

    # Then port 80 only redirects, and 443 terminates TLS and forwards to Kong
    listeners = {int(item.inputs["port"]): item.inputs for item in deployment.of_type(LISTENER)}
    assert sorted(listeners) == [80, 443]
    (redirect,) = listeners[80]["defaultActions"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}
    (forward,) = listeners[443]["defaultActions"]
    assert listeners[443]["certificateArn"] == CERTIFICATE
    assert forward == {
        "type": "forward",
        "targetGroupArn": deployment.one(TARGET_GROUP).state["arn"],
    }


def test_without_a_certificate_http_forwards_to_kong() -> None:
    deployment = deploy("dev")

    (listener,) = deployment.of_type(LISTENER)
    assert listener.inputs["port"] == 80
    (action,) = listener.inputs["defaultActions"]
    assert action["type"] == "forward"


def _on_bucket(deployed: Deployment, typ: str, bucket: Recorded) -> Recorded:
    (resource,) = [r for r in deployed.of_type(typ) if r.inputs["bucket"] == bucket.id]
    return resource
