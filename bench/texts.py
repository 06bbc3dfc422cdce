"""The texts the speak-side benches say, the same in each so their figures compare."""

TEXTS = {
    "short": "The kitchen lights are on now.",
    "paragraph": (
        "Good morning! It is seven degrees outside and light rain is expected after lunch. "
        "Your first meeting starts at half past nine, so you have time for breakfast."
    ),
}
