"""A PDF page's own text (`text_layer=prefer`): read instead of recognised, page by page,
with boxes in the page's pixels; pages without text still go to the engine."""

from collections.abc import Sequence

import numpy as np

from ocr_runtime.application import BatchProcessor, ImageLimits, JobMessage
from ocr_runtime.application.documents import Document, PagePlan, open_document
from ocr_runtime.application.pdf import PageToDraw
from ocr_runtime.application.ports import Image
from ocr_runtime.application.process import draw_chunk, page_chunks
from ocr_runtime.domain import InvalidImage, Job, OcrPage, PageSource, TextLayer
from tests.runtime.unit.runtime_fakes import FakeBlobStore, FakeEngine, FakeRepository, png_bytes
from tests.support.pdfs import text_pdf

LIMITS = ImageLimits(max_bytes=1_000_000, max_pixels=2_000_000, pdf_dpi=144)
# 300 x 200 pt pages at 144 DPI (two pixels per point): 600 x 400 pixels.
PAGE_PT = {"width_pt": 300.0, "height_pt": 200.0}


def test_prefer_reads_the_text_of_pages_that_have_one_and_renders_the_others() -> None:
    data = text_pdf(["Invoice 42", "Total 17.50 EUR"], [], **PAGE_PT)
    document = open_document(data, LIMITS, text_layer=TextLayer.PREFER)
    first, second = document.pages
    assert isinstance(first, OcrPage) and first.source is PageSource.TEXT_LAYER
    assert (first.page, first.width, first.height) == (1, 600, 400)
    assert [line.text for line in first.lines] == ["Invoice 42", "Total 17.50 EUR"]
    assert {line.confidence for line in first.lines} == {1.0}
    # The first line's baseline is 92 pt below the top, 72 pt from the left: in pixels its
    # box starts near x = 144 and sits above y = 184.
    (x0, y0), _, (x1, y1), _ = first.lines[0].box
    assert 140 <= x0 < x1 <= 600 and 120 <= y0 < y1 <= 190, first.lines[0].box
    assert second == PageToDraw(index=1, width=600, height=400)  # drawn only when its turn comes
    (pixels,) = document.draw([1])
    assert pixels.shape == (400, 600, 3)


def test_ignore_renders_every_page() -> None:
    data = text_pdf(["Invoice 42"], **PAGE_PT)
    document = open_document(data, LIMITS, text_layer=TextLayer.IGNORE)
    assert document.pages == (PageToDraw(index=0, width=600, height=400),)


def test_images_have_no_text_layer_and_are_decoded() -> None:
    (page,) = open_document(png_bytes(30, 10), LIMITS, text_layer=TextLayer.PREFER).pages
    assert isinstance(page, np.ndarray) and page.shape[:2] == (10, 30)


def test_the_option_travels_in_the_message_and_old_messages_mean_ignore() -> None:
    message = JobMessage("j1", "b1", 1, 1, submitted_at=1.0, text_layer=TextLayer.PREFER)
    assert JobMessage.from_bytes(message.to_bytes()).text_layer is TextLayer.PREFER
    old = b'{"job_id":"j1","blob_id":"b1","width":1,"height":1,"submitted_at":1.0}'
    assert JobMessage.from_bytes(old).text_layer is TextLayer.IGNORE


async def test_a_worker_sends_only_pages_without_text_to_the_engine() -> None:
    repo, blobs, engine = FakeRepository(), FakeBlobStore(), FakeEngine()
    data = text_pdf(["Invoice 42"], [], ["Page three"], **PAGE_PT)
    blob_id = await blobs.put(data)
    job = await repo.add(Job.submit(blob_id, width=600, height=1200))
    message = JobMessage(job.job_id, blob_id, 600, 1200, 1.0, text_layer=TextLayer.PREFER)
    processor = BatchProcessor(engine, blobs, LIMITS, max_attempts=3, repository=repo)
    runnable = (await processor.claim([message])).runnable
    report = await processor.infer(runnable, await processor.fetch(runnable))
    assert engine.calls == [1] and report.images == 1  # page 2 only
    (outcome,) = report.outcomes
    assert outcome.result is not None
    pages = outcome.result.pages
    assert [page.page for page in pages] == [1, 2, 3]
    assert [page.source for page in pages] == [
        PageSource.TEXT_LAYER, PageSource.OCR, PageSource.TEXT_LAYER
    ]  # fmt: skip
    # The fake engine reads an image's width as its text.
    assert outcome.result.text == "Invoice 42\f600\fPage three"


async def test_a_document_read_entirely_from_its_text_never_calls_the_engine() -> None:
    repo, blobs, engine = FakeRepository(), FakeBlobStore(), FakeEngine()
    blob_id = await blobs.put(text_pdf(["Only text"], **PAGE_PT))
    job = await repo.add(Job.submit(blob_id, width=600, height=400))
    message = JobMessage(job.job_id, blob_id, 600, 400, 1.0, text_layer=TextLayer.PREFER)
    processor = BatchProcessor(engine, blobs, LIMITS, max_attempts=3, repository=repo)
    runnable = (await processor.claim([message])).runnable
    report = await processor.infer(runnable, await processor.fetch(runnable))
    assert engine.calls == [] and report.images == 0
    (outcome,) = report.outcomes
    assert outcome.result is not None and outcome.result.text == "Only text"


async def test_a_long_document_is_drawn_and_recognised_a_few_pages_per_engine_call() -> None:
    """Memory is bounded by the pixels of one engine call, not by the document: 5 pages of
    600 x 400 under a budget of two pages' pixels make three calls."""
    repo, blobs, engine = FakeRepository(), FakeBlobStore(), FakeEngine()
    blob_id = await blobs.put(text_pdf(*([["x"]] * 5), **PAGE_PT))
    job = await repo.add(Job.submit(blob_id, width=600, height=2000))
    message = JobMessage(job.job_id, blob_id, 600, 2000, 1.0)
    processor = BatchProcessor(engine, blobs, LIMITS, max_attempts=3, repository=repo,
                               pixels_per_call=2 * 600 * 400)  # fmt: skip
    runnable = (await processor.claim([message])).runnable
    report = await processor.infer(runnable, await processor.fetch(runnable))
    assert engine.calls == [2, 2, 1] and report.images == 5
    (outcome,) = report.outcomes
    assert outcome.result is not None
    assert [page.page for page in outcome.result.pages] == [1, 2, 3, 4, 5]
    assert outcome.result.text == "\f".join(["600"] * 5)
    # A poller saw the pages done after each call but the last (the result ends it).
    assert repo.progress == [(job.job_id, 2, 5), (job.job_id, 4, 5)]


def test_chunks_keep_page_order_skip_read_text_and_let_a_big_page_go_alone() -> None:
    small = PageToDraw(0, 10, 10)
    big = PageToDraw(1, 100, 100)
    text = OcrPage(1, 10, 10)
    documents: list[list[PagePlan]] = [[small, text, small], [big, small]]
    assert page_chunks(documents, budget=250) == [[(0, 0), (0, 2)], [(1, 0)], [(1, 1)]]
    assert page_chunks(documents, budget=None) == [[(0, 0), (0, 2), (1, 0), (1, 1)]]


def test_a_page_that_cannot_be_drawn_fails_its_document_as_invalid() -> None:
    class Broken(Document):
        def draw(self, indices: Sequence[int]) -> list[Image]:
            raise InvalidImage("page 1 of the PDF cannot be rendered")

    broken = Broken(b"", [PageToDraw(0, 10, 10)], LIMITS)
    fine = Document(b"", [np.zeros((5, 5, 3), dtype=np.uint8)], LIMITS)
    drawn = draw_chunk([broken, fine], [(0, 0), (1, 0)])
    assert isinstance(drawn[(0, 0)], InvalidImage)
    assert isinstance(drawn[(1, 0)], np.ndarray)
