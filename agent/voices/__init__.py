"""The voices a household can choose: catalogs, downloads, imports (the voices path)."""
