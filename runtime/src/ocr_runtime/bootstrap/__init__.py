"""Composition root: builds adapters from Settings and wires them into the roles. The only
package that imports `ocr_runtime.adapters`."""
