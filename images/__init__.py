"""Container images for langdetect: a registry-free base, a slim CPU image and a GPU image.

`langdetect images base|build|report` (see langdetect_ops/cli.py); scripts/install-docker.sh sets
up the engine.
"""
