"""Training the three parts of ToonCrafter on the engine's own networks (paper, section 4).

- `rectify`: toon rectification learning: the image-context projector and the UNet's spatial layers
  learn cartoons while its temporal layers (motion priors learned on real video) stay frozen;
- `decoder`: the dual-reference 3D decoder, encoder frozen, L1 + LPIPS + adversarial loss;
- `sketch`: the frame-independent sketch encoder (a ControlNet) with the denoiser frozen, on
  bisection-selected sparse sketches.

The package consumes `engine.tooncrafter` (networks, schedule, checkpoint loading); the engine never
imports it. Everything it writes uses the official checkpoint key layout, so a trained file goes
straight back into `--checkpoint` / `--sketch-checkpoint` and the ONNX exporter.
"""
