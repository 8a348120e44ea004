"""`python -m ocr_runtime.bootstrap <role>`: the same as the `ocr-runtime` script."""

from ocr_runtime.bootstrap.cli import main

main()
