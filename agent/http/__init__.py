"""The HTTP and WebSocket door (aiohttp): the API chat bots and web pages call, and the web page."""
