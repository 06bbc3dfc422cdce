"""The household's nodes: this agent's own state document and the registry of the others."""
