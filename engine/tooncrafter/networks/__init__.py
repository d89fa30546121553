"""The ToonCrafter networks: 3D UNet, dual-reference VAE, image-context projector, CLIP towers and the
sketch encoder, one component per file, built from explicit configs."""
