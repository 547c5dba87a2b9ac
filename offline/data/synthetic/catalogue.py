"""Synthetic items: taxonomy leaf, brand, price, material, style, audience, title, launch time.

Brands belong to a department and sit at a usual price band; popularity is Zipf-like over a random
order of the items, so a few items collect most impressions and many are rarely seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from offline.data.canonical import Catalogue
from offline.data.synthetic.config import ALWAYS_LAUNCHED_FRACTION, DAY_S, SyntheticConfig, Window
from offline.data.synthetic.latent import Floats, HiddenWorld, Ints, pick, unit
from offline.knowledge.world import PRICE_BANDS, STYLES, TAXONOMY

_BRANDS: dict[str, tuple[str, ...]] = {
    "Home": ("Hearthwell", "Casa Lumen", "Oakridge", "Nordvik", "Maison Bleu", "Kiln and Loom"),
    "Electronics": ("Voltera", "Auralis", "Pixelcraft", "Zenbyte", "Northwave", "Lumetric"),
    "Apparel": ("Threadline", "Marlowe", "Urban Fold", "Kestrel", "Saltmarsh", "Atelier Noor"),
    "Sports": ("Stridewell", "Peakform", "Aquaris", "Velocity Lab", "Corefit", "Summit Pro"),
    "Outdoors": ("Trailhead", "Fernwood", "Ridgeback", "Tidewater", "Evergrove", "Basecamp"),
    "Beauty": ("Lumiere", "Petal and Pine", "Glowlab", "Verdant", "Maison Iris", "Aurea"),
    "Toys": ("Brickle", "Wonderkin", "Playnest", "Tinker Bay", "Happy Otter", "Starling"),
    "Books": ("Inkwell Press", "Lantern House", "Quarto", "Bluefinch", "Paperlark", "Folio"),
    "Grocery": ("Harvest Lane", "Golden Mill", "Bean and Leaf", "Terra Verde", "Sunpantry",
                "Orchard Row"),
    "Pets": ("Pawsome", "Whisker Co", "Tailwind", "Fin and Feather", "Barkley", "Cozy Critter"),
}  # fmt: skip
_BRAND_BAND = np.array([0, 1, 2, 2, 3, 4])  # each brand's usual price band, by brand slot
_BAND_PRICE = np.array([0.4, 0.7, 1.0, 1.8, 3.5])  # price multiplier of each band
_TOP_PRICE = {"Home": 40, "Electronics": 150, "Apparel": 50, "Sports": 60, "Outdoors": 70,
              "Beauty": 25, "Toys": 25, "Books": 15, "Grocery": 8, "Pets": 20}  # fmt: skip


@dataclass(frozen=True)
class Items:
    """What the generator keeps about items beyond the catalogue columns."""

    leaf: Ints
    top: Ints
    launch_ts: Ints
    popularity: npt.NDArray[np.float64]  # exposure weight, sums to 1
    latent: Floats  # [n_items, latent_dim], unit rows


def draw_catalogue(
    config: SyntheticConfig, world: HiddenWorld, window: Window, rng: np.random.Generator
) -> tuple[Catalogue, Items]:
    n = config.n_items
    leaf_weight = rng.gamma(2.0, size=world.n_leaves)  # some kinds have many more items
    leaf = rng.choice(world.n_leaves, size=n, p=leaf_weight / leaf_weight.sum())
    top = world.leaf_top[leaf]
    material = pick(world.top_materials, top, rng)
    audience = pick(world.top_audiences, top, rng)
    style = rng.integers(0, len(STYLES), n)
    brand_slot = rng.integers(0, len(_BRAND_BAND), n)
    band = np.clip(_BRAND_BAND[brand_slot] + rng.choice([-1, 0, 0, 1], n), 0, len(PRICE_BANDS) - 1)
    top_price = np.array([_TOP_PRICE[t.name] for t in TAXONOMY])
    price = top_price[top] * _BAND_PRICE[band] * np.exp(rng.normal(0.0, 0.15, n))
    popularity = (rng.permutation(n) + 1.0) ** -config.popularity_exponent
    launch_ts = _launch_times(config, window, rng)
    residual = unit(rng.standard_normal((n, config.latent_dim)))
    latent = unit(
        world.leaf[leaf] + 0.5 * world.style[style] + 0.35 * world.material[material]
        + 0.45 * world.audience[audience] + 0.4 * world.band[band]
        + config.item_residual * residual
    )  # fmt: skip
    brands = np.array([list(_BRANDS[t.name]) for t in TAXONOMY])[top, brand_slot]
    materials, audiences = np.array(world.materials)[material], np.array(world.audiences)[audience]
    styles = np.array(STYLES)[style]
    title = _words(brands, np.char.title(styles), np.char.title(materials), world.leaf_names[leaf])
    catalogue = Catalogue(
        item_ids=np.char.add("i", np.arange(n).astype(str)),
        category_paths=world.leaf_paths[leaf],
        brands=brands,
        price_bands=band.astype(np.int32),
        prices=np.round(price, 2).astype(np.float32),
        titles=_words(title, np.char.add("for ", np.char.title(audiences))),
        materials=materials,
        styles=styles,
        audiences=audiences,
        launch_ts=launch_ts,
    )
    return catalogue, Items(leaf, top, launch_ts, popularity / popularity.sum(), latent)


def _words(*columns: npt.NDArray[np.str_]) -> npt.NDArray[np.str_]:
    """Columns of words joined with spaces, row by row."""
    joined = columns[0]
    for column in columns[1:]:
        joined = np.char.add(np.char.add(joined, " "), column)
    return joined


def _launch_times(config: SyntheticConfig, window: Window, rng: np.random.Generator) -> Ints:
    """Most items predate the window, some launch during training, cold ones after the split."""
    n = config.n_items
    launch = rng.integers(window.start - 365 * DAY_S, window.start, n)
    in_window = rng.random(n) > ALWAYS_LAUNCHED_FRACTION
    launch[in_window] = rng.integers(window.start, window.split, int(in_window.sum()))
    cold = rng.choice(n, size=round(config.cold_item_fraction * n), replace=False)
    # Cold items launch early enough in the evaluation period to collect impressions there.
    last_launch = window.split + int(0.75 * (window.end - window.split))
    launch[cold] = rng.integers(window.split, last_launch, len(cold))
    return launch.astype(np.int64)
