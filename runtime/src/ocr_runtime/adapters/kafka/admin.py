"""Topic administration: create the data plane's topics when missing (workers and writers
do it at start when `OCR_KAFKA_CREATE_TOPICS` is on; tests use it with unique names), and
delete them (tests only)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ocr_runtime.adapters.kafka.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def _admin(bootstrap: str, security: KafkaSecurity) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="ocr-topic-admin", **security.client_options()
    )
    await security.started(bootstrap, admin.start, admin.close)
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap: str,
    names: Sequence[str],
    *,
    partitions: int,
    replication: int = 1,
    security: KafkaSecurity = PLAINTEXT,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    async with _admin(bootstrap, security) as admin:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(n, num_partitions=partitions, replication_factor=replication)
                     for n in missing]
                )  # fmt: skip
            except TopicAlreadyExistsError:
                log.info("topics created concurrently by another process: %s", missing)
        return missing


async def missing_topics(
    bootstrap: str, names: Sequence[str], *, security: KafkaSecurity = PLAINTEXT
) -> list[str]:
    """The topics among `names` that do not exist (in the order given)."""
    async with _admin(bootstrap, security) as admin:
        existing = set(await admin.list_topics())
    return [n for n in dict.fromkeys(names) if n not in existing]


async def delete_topics(
    bootstrap: str, names: Sequence[str], *, security: KafkaSecurity = PLAINTEXT
) -> None:
    async with _admin(bootstrap, security) as admin:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
