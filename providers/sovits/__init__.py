"""GPT-SoVITS through its own HTTP server: client.py speaks to it, reference.py finds and ships
the speaker's reference audio, servers.py and supervisor.py run the server, install.py installs it.
"""
