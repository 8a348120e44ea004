"""Documents built in the test: PDFs of pages drawn with Pillow, hostile PDFs written object
by object (password-protected, huge pages, thousands of pages), multi-page TIFFs."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image


def pdf_of_images(pages: Sequence[npt.NDArray[np.uint8]], dpi: float = 200.0) -> bytes:
    """A PDF with one page per RGB image, each page `dpi` pixels per inch."""
    images = [Image.fromarray(page) for page in pages]
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:],
                   resolution=dpi)  # fmt: skip
    return buffer.getvalue()


def tiff_pages(*sizes: tuple[int, int]) -> bytes:
    """A multi-page TIFF; page i is filled with the grey level 10 * (i + 1)."""
    pages = [Image.new("RGB", size, (10 * (i + 1),) * 3) for i, size in enumerate(sizes)]
    buffer = io.BytesIO()
    pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:])
    return buffer.getvalue()


def dark_square_page(size: int = 200) -> npt.NDArray[np.uint8]:
    page = np.full((size, size, 3), 255, dtype=np.uint8)
    page[50:100, 50:100] = 0
    return page


def _assemble(objects: Sequence[str], trailer: str) -> bytes:
    """A PDF whose objects 1..n are `objects`, with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R {trailer} >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def blank_pdf(width_pt: float = 612, height_pt: float = 792, pages: int = 1) -> bytes:
    """`pages` empty pages of the given size in points (72 per inch)."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] "
               f"/Count {pages} >>"]  # fmt: skip
    objects += [f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width_pt} {height_pt}] >>"] * pages
    return _assemble(objects, "")


def encrypted_pdf() -> bytes:
    """Standard security handler, revision 2, with a user password nobody knows: the check of
    the empty password fails, as with any password-protected file."""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        f"<< /Filter /Standard /V 1 /R 2 /O <{'ab' * 32}> /U <{'cd' * 32}> /P -4 >>",
    ]
    return _assemble(objects, f"/Encrypt 4 0 R /ID [<{'01' * 16}> <{'01' * 16}>]")


def text_pdf(*pages: Sequence[str], width_pt: float = 612, height_pt: float = 792) -> bytes:
    """A PDF whose pages carry a text layer (Helvetica, 24 pt, one line every 40 pt from
    the top, 72 pt from the left); an empty sequence makes a page without any text."""
    count = len(pages)
    font = 3 + 2 * count
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{kids}] /Count {count} >>"]  # fmt: skip
    for index, lines in enumerate(pages):
        shown = " ".join(
            f"1 0 0 1 72 {height_pt - 92 - 40 * row} Tm ({text}) Tj"
            for row, text in enumerate(lines)
        )
        stream = f"BT /F1 24 Tf {shown} ET" if lines else ""
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width_pt} {height_pt}] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {4 + 2 * index} 0 R >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return _assemble(objects, "")
