"""Code shared by the engine and both front ends: standard library only (it runs inside Krita)."""
