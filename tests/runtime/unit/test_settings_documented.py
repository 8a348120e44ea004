from pathlib import Path

from ocr_runtime.core.settings import Settings

DOC = Path(__file__).resolve().parents[3] / "README.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    missing = [name for name in Settings.model_fields if f"`OCR_{name.upper()}`" not in text]
    assert missing == []
