"""Shipped TS-generator checkpoints (package data; a package so that wheels carry the files)."""
