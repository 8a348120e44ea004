"""A deterministic simulated day of one stack, with the operator's real advisor deciding
every interval; compared with each fixed mode and with an oracle that knows the whole day.
`make simulate` (python -m ocr_operator.simulate) prints the figures of docs/advisor.md."""
