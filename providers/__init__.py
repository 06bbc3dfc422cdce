"""Speech providers: one package per engine, each with a light ``config`` module.

``config`` modules import nothing heavy, so ``voice.json`` can be validated without
loading any model; the engines themselves are imported only when first used.
"""
