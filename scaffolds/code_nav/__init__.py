"""The bundled `code-nav` scaffold (see code_nav.yaml)."""
