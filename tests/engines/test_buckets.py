"""Session inputs padded to repeating shapes: the padding is zeros, the output comes back
cropped to the caller's rows and size, and the shapes a stream of batches produces repeat."""

from __future__ import annotations

import numpy as np
import pytest

from ocr_runtime.adapters.engines._batching import FloatArray
from ocr_runtime.adapters.engines._buckets import (
    BucketedSession,
    Buckets,
    Output,
    bucket_rows,
    round_up,
)


class RecordingSession:
    """Returns its input (a map at the input's size) and remembers the shapes it saw."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.character_list = ["a", "b"]

    def __call__(self, batch: FloatArray) -> FloatArray:
        self.shapes.append(tuple(batch.shape))
        return batch * 2.0


@pytest.mark.parametrize(
    ("rows", "max_rows", "expected"),
    [(1, 8, 1), (3, 8, 4), (5, 8, 8), (8, 8, 8), (9, 8, 9), (5, 6, 6), (33, 64, 64)],
)
def test_rows_round_up_to_a_power_of_two_within_the_batch_size(
    rows: int, max_rows: int, expected: int
) -> None:
    assert bucket_rows(rows, max_rows) == expected


def test_round_up_to_a_step() -> None:
    assert [round_up(v, 128) for v in (1, 128, 129, 640)] == [128, 128, 256, 640]


def test_a_map_is_cropped_back_to_the_callers_rows_and_size() -> None:
    inner = RecordingSession()
    session = BucketedSession(inner, Buckets(128, 128, 8), Output.MAP)
    batch = np.random.default_rng(1).random((3, 3, 160, 96), dtype=np.float32)
    result = session(batch)
    assert inner.shapes == [(4, 3, 256, 128)]
    np.testing.assert_array_equal(result, batch * 2.0)


def test_rows_output_keeps_the_padded_width_and_drops_the_padded_rows() -> None:
    inner = RecordingSession()
    session = BucketedSession(inner, Buckets(1, 64, 64), Output.ROWS)
    batch = np.ones((5, 3, 48, 300), dtype=np.float32)
    result = session(batch)
    assert inner.shapes == [(8, 3, 48, 320)]
    assert result.shape == (5, 3, 48, 320)
    assert float(result[:, :, :, 300:].max()) == 0.0  # the padding is zeros
    assert session.character_list == ["a", "b"]  # the rest is the wrapped session's


def test_a_stream_of_page_sizes_reuses_a_few_shapes() -> None:
    inner = RecordingSession()
    session = BucketedSession(inner, Buckets(128, 128, 1), Output.MAP)
    rng = np.random.default_rng(7)
    sizes = [(int(rng.integers(15, 32)) * 32, int(rng.integers(15, 32)) * 32) for _ in range(100)]
    for height, width in sizes:
        session(np.zeros((1, 3, height, width), dtype=np.float32))
    assert len(set(sizes)) > 80  # nearly every page its own shape without buckets
    assert len(set(inner.shapes)) <= 25  # 480..992 px: five steps of 128 each way
