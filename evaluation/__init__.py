"""The paper's evaluation suite (`inbetween-eval`): FVD/KVD, LPIPS, CLIP-img/-txt, CPBD, plus the
project's PSNR/SSIM/line F, per method and per gap, with contact sheets."""
