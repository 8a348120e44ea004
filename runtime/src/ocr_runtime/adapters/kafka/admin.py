"""Topic administration: create the data plane's topics when missing (workers and writers
do it at start when `OCR_KAFKA_CREATE_TOPICS` is on; tests use it with unique names), and
delete them (tests only)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap: str, names: Sequence[str], *, partitions: int, replication: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="ocr-topic-admin")
    await admin.start()
    try:
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
    finally:
        await admin.close()


async def missing_topics(bootstrap: str, names: Sequence[str]) -> list[str]:
    """The topics among `names` that do not exist (in the order given)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="ocr-topic-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    return [n for n in dict.fromkeys(names) if n not in existing]


async def delete_topics(bootstrap: str, names: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="ocr-topic-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
