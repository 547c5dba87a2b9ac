"""A seeded synthetic catalogue and click log whose structure a knowledge-aware ranker can exploit.

Why synthetic: the ranker, the knowledge step and the behaviour generator need data whose hidden
truth is known, at any size, with no download. The world is built so that each ReaSeq idea has
something to win:

* Every item has a hidden latent vector that is a function of its metadata (leaf kind and the kinds
  that complement it, style, material, audience, price band) plus a small item-specific residual,
  so text written from metadata carries the click signal, for rare and brand-new items too.
* Every user has a primary interest, which the exposure policy mostly shows, and a hidden secondary
  interest (usually a complementary kind in another department) that exposure rarely shows, so
  the user's own log seldom reveals it: reasoning beyond the log can find it.
* Clicks are Bernoulli(sigmoid(a * <user, item> + b * log popularity + c)), with c calibrated to a
  target click-through rate. A fraction of clicks add a cart event and some of those a purchase.

Everything is vectorised over items, users, requests and impressions; the only Python loops run
over taxonomy rows, sampling rounds and fixed-size chunks of requests.
"""

from offline.data.synthetic.clicks import ClickModel, examination
from offline.data.synthetic.config import DEFAULT_END_TS, GENERATOR_VERSION, SyntheticConfig
from offline.data.synthetic.generate import (
    GroundTruth,
    click_probability,
    generate,
    generate_with_truth,
)

__all__ = [
    "DEFAULT_END_TS",
    "GENERATOR_VERSION",
    "ClickModel",
    "GroundTruth",
    "SyntheticConfig",
    "click_probability",
    "examination",
    "generate",
    "generate_with_truth",
]
