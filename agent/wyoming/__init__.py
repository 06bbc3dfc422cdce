"""The Wyoming door: Home Assistant Assist's text-to-speech protocol over TCP or a Unix socket.

``server`` runs it on a thread with its own asyncio loop, ``handler`` answers one connection's
events, ``speech`` turns one speak request into audio events, ``text_stream`` cuts streamed text
into sentences, ``names`` is the voice naming scheme and ``info`` the ``describe`` answer. The
``wyoming`` library is imported only when the door is switched on (VOICE_AGENT_WYOMING_URI).
"""
