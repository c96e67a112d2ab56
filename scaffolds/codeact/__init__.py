"""The bundled `codeact` scaffold (see codeact.yaml)."""
