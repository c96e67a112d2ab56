"""The bundled `swe-agent` scaffold (see swe_agent.yaml)."""
