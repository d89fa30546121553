"""Full-resolution restoration of in-betweens from the artist's keys (pipeline stage after the backend).

correspondence: dense flow generated frame -> key with a trust measure; detail: warped key detail
where trusted, a line-preserving upscale (upscale) elsewhere; colour_match: the frame's global
colour drift; palette: the keys' flat colours; stage: the pipeline stage and its auto/on/off rules.
"""

from .stage import RestorationPlan, plan_restoration, restore_inbetweens

__all__ = ["RestorationPlan", "plan_restoration", "restore_inbetweens"]
