"""Files moved between nodes by content hash: what this home serves (``index``) and what it
fetched from others (``cache``)."""
