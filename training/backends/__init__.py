"""Training backends other than the builtin engine.

`training.engine` imports a backend lazily, only when a config asks for it, so the optional extras a
backend needs (the `tunix` backend: google-tunix, qwix, sentencepiece, safetensors) are never
imported by code that does not use them. Nothing here may import Django.
"""
