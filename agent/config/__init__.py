"""voice.json: its model (derived from the provider registry), the config in force per profile, hot reload."""
