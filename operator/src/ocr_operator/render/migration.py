"""The migration Job: `ocr-runtime migrate` once per runtime image, before any pod of that
image starts.

Its name carries a digest of its pod template, image included, so a new image version gets
a new Job while the Job of an image already migrated is simply found again (a Job's
template is immutable: it is created once and never re-applied). The runtime serialises
concurrent migrations of one database with a named lock, so two stacks (or two versions)
migrating at once are safe.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ocr_contract import Role
from ocr_operator.model import Component, OCRServingSpec
from ocr_operator.render._manifest import (
    LABEL_COMPONENT,
    Instance,
    Kind,
    Manifest,
    config_map_name,
    make,
    pod_labels,
)
from ocr_operator.render.env import database_env
from ocr_operator.render.images import DEFAULTS, StackDefaults, migration_image
from ocr_operator.render.workloads import (
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    extra_env,
    placement,
    pod_identity,
    pod_volumes,
    volume_mounts,
)

MIGRATION_COMPONENT = "migrate"
ANNOTATION_IMAGE = "ocrserving.io/image"
BACKOFF_LIMIT = 4  # 10 s, 20 s, 40 s, 80 s between tries: a database that is still starting
ACTIVE_DEADLINE_SECONDS = 900


def migration_job_name(instance: Instance, template: dict[str, Any]) -> str:
    """Named after its pod template (image, placement, database Secret): a new image gets a
    new Job, and so does a fix to a template that could never run (a Job is immutable)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
    return f"{instance.name[:40]}-migrate-{digest}"


def migration_job(
    spec: OCRServingSpec, instance: Instance, defaults: StackDefaults = DEFAULTS
) -> Manifest:
    image = migration_image(spec, defaults)
    labels = {**pod_labels(instance), LABEL_COMPONENT: MIGRATION_COMPONENT}
    container: dict[str, Any] = {
        "name": MIGRATION_COMPONENT,
        "image": image,
        "imagePullPolicy": spec.image_pull_policy.value,
        "command": ["ocr-runtime"],
        "args": [Role.MIGRATE.value],
        "envFrom": [{"configMapRef": {"name": config_map_name(instance)}}],
        "env": [database_env(spec), *extra_env(spec.api)],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": dict(CONTAINER_SECURITY_CONTEXT),
        "volumeMounts": volume_mounts(spec.api),
    }
    body: dict[str, Any] = {
        "backoffLimit": BACKOFF_LIMIT,
        "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
        "template": {
            # The API's pod passthrough too (identity, extra env and volumes, metadata): the
            # migration runs the API's image against the same database.
            "metadata": {
                "labels": {**spec.api.pod_labels, **labels},
                "annotations": {**spec.api.pod_annotations, ANNOTATION_IMAGE: image},
            },
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": dict(POD_SECURITY_CONTEXT),
                "containers": [container],
                "volumes": pod_volumes(spec.api),
                # Where the API runs: the migration uses the API's (CPU) image.
                **placement(spec, Component.API, defaults),
                **pod_identity(spec.api),
            },
        },
    }
    manifest = make(Kind.JOB, migration_job_name(instance, body["template"]), instance, body)
    manifest.body["metadata"]["labels"][LABEL_COMPONENT] = MIGRATION_COMPONENT
    manifest.body["metadata"]["annotations"] = {ANNOTATION_IMAGE: image}
    return manifest
