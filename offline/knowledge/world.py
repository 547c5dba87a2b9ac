"""Built-in world knowledge: a product taxonomy and the common-sense relations between its kinds.

These tables stand in for what a language model knows about products: what a kind of product is
used for, in which seasons people buy it, which other kinds go with it (complements) and which can
replace it (substitutes). The offline knowledge backend reads them to describe items without any
model; the synthetic generator builds its catalogue on the same taxonomy, so that the simulated
shoppers follow the same common sense that the knowledge text spells out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import get_args

from offline.knowledge.schema import PriceBand

#: Category path separator, as in ``"Home>Kitchen>Cookware"``.
PATH_SEPARATOR = ">"
#: Price band names by band id (0 .. 4).
PRICE_BANDS: tuple[str, ...] = get_args(PriceBand)
STYLES: tuple[str, ...] = (
    "modern", "classic", "minimalist", "rustic", "sporty", "playful", "vintage", "elegant",
)  # fmt: skip


@dataclass(frozen=True)
class Subcategory:
    """A second-level category: its leaf kinds and what they are for."""

    name: str
    leaves: tuple[str, ...]
    use_cases: tuple[str, ...]
    seasons: tuple[str, ...]


@dataclass(frozen=True)
class TopCategory:
    """A department: its subcategories and the materials and audiences typical of it."""

    name: str
    subcategories: tuple[Subcategory, ...]
    materials: tuple[str, ...]
    audiences: tuple[str, ...]


def _sub(name: str, leaves: str, use: str, seasons: str) -> Subcategory:
    return Subcategory(name, _split(leaves), _split(use), _split(seasons))


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


ALL_YEAR = "all year"
TAXONOMY: tuple[TopCategory, ...] = (
    TopCategory("Home", (
        _sub("Kitchen", "Cookware, Cutlery, Small Appliances", "cooking, meal prep", ALL_YEAR),
        _sub("Dining", "Tableware, Glassware, Table Linen", "hosting, family meals", "holidays"),
        _sub("Bedroom", "Bedding, Pillows, Mattress Toppers", "sleeping, relaxing", "winter"),
        _sub("Decor", "Candles, Wall Art, Vases", "decorating, gifting", "holidays, autumn"),
    ), _split("cotton, ceramic, stainless steel, glass, wood"),
       _split("families, students, professionals, hosts")),
    TopCategory("Electronics", (
        _sub("Audio", "Headphones, Speakers, Earbuds", "listening to music, commuting", ALL_YEAR),
        _sub("Computing", "Laptops, Keyboards, Monitors", "working, studying, gaming",
             "back to school"),
        _sub("Phones", "Smartphones, Phone Cases, Chargers", "staying connected, travel",
             ALL_YEAR),
        _sub("Photography", "Cameras, Lenses, Tripods", "photography, content creation",
             "summer, holidays"),
    ), _split("aluminium, plastic, carbon fibre, silicone"),
       _split("students, professionals, gamers, creators")),
    TopCategory("Apparel", (
        _sub("Womenswear", "Dresses, Blouses, Skirts", "everyday wear, office, parties",
             "spring, summer"),
        _sub("Menswear", "Shirts, Trousers, Suits", "office, formal events", ALL_YEAR),
        _sub("Outerwear", "Jackets, Raincoats, Winter Coats", "keeping warm, commuting",
             "autumn, winter"),
        _sub("Footwear", "Sneakers, Boots, Sandals", "walking, everyday wear", ALL_YEAR),
    ), _split("cotton, wool, denim, leather, linen"), _split("women, men, kids, unisex")),
    TopCategory("Sports", (
        _sub("Fitness", "Yoga Mats, Dumbbells, Resistance Bands", "home workouts, yoga",
             "winter, new year"),
        _sub("Running", "Running Shoes, Running Apparel, Sports Watches", "running, training",
             "spring, summer"),
        _sub("Cycling", "Bikes, Helmets, Bike Lights", "commuting, fitness", "spring, summer"),
        _sub("Swimming", "Swimsuits, Goggles, Swim Caps", "swimming, beach holidays", "summer"),
    ), _split("neoprene, polyester, steel, foam"),
       _split("beginners, athletes, families, seniors")),
    TopCategory("Outdoors", (
        _sub("Camping", "Tents, Sleeping Bags, Camp Stoves", "camping, festivals", "summer"),
        _sub("Hiking", "Backpacks, Hiking Poles, Water Bottles", "hiking, travel",
             "spring, summer, autumn"),
        _sub("Garden", "Planters, Garden Tools, Seeds", "gardening, growing food",
             "spring, summer"),
        _sub("Fishing", "Fishing Rods, Reels, Tackle Boxes", "fishing, weekend trips",
             "summer, autumn"),
    ), _split("nylon, steel, wood, canvas"), _split("beginners, families, adventurers, seniors")),
    TopCategory("Beauty", (
        _sub("Skincare", "Moisturisers, Cleansers, Sunscreen", "daily routine, sun protection",
             ALL_YEAR),
        _sub("Makeup", "Lipstick, Foundation, Mascara", "parties, everyday look", ALL_YEAR),
        _sub("Haircare", "Shampoo, Conditioner, Hair Dryers", "daily routine, styling",
             ALL_YEAR),
        _sub("Fragrance", "Perfume, Cologne, Body Mist", "gifting, evenings out", "holidays"),
    ), _split("organic, mineral, botanical, synthetic"), _split("women, men, teens, unisex")),
    TopCategory("Toys", (
        _sub("Building", "Building Blocks, Model Kits, Marble Runs", "creative play, learning",
             "holidays"),
        _sub("Plush", "Teddy Bears, Plush Animals, Puppets", "bedtime, comfort", "holidays"),
        _sub("Games", "Board Games, Puzzles, Card Games", "family night, parties", "winter"),
        _sub("Outdoor Play", "Scooters, Water Guns, Kites", "outdoor play, exercise", "summer"),
    ), _split("wood, plastic, plush fabric, cardboard"),
       _split("toddlers, kids, teens, families")),
    TopCategory("Books", (
        _sub("Fiction", "Novels, Thrillers, Fantasy", "reading, relaxing", "summer, holidays"),
        _sub("Non-fiction", "Biographies, History, Science", "learning, reading", ALL_YEAR),
        _sub("Cookery", "Cookbooks, Baking Books, Diet Guides", "cooking, baking, healthy eating",
             "new year, holidays"),
        _sub("Kids Books", "Picture Books, Early Readers, Activity Books",
             "bedtime, learning to read", "back to school"),
    ), _split("hardcover, paperback, ebook, board book"), _split("kids, teens, adults")),
    TopCategory("Grocery", (
        _sub("Beverages", "Coffee Beans, Tea, Juice", "breakfast, daily routine", ALL_YEAR),
        _sub("Snacks", "Chips, Chocolate, Nuts", "snacking, movie nights", ALL_YEAR),
        _sub("Pantry", "Pasta, Olive Oil, Spices", "cooking, family meals", ALL_YEAR),
        _sub("Baking", "Flour, Baking Mixes, Sprinkles", "baking, family activities",
             "holidays"),
    ), _split("organic, conventional, fair trade, whole grain"),
       _split("families, students, professionals, health-conscious")),
    TopCategory("Pets", (
        _sub("Dogs", "Dog Food, Dog Toys, Leashes", "feeding, walks, play", ALL_YEAR),
        _sub("Cats", "Cat Food, Cat Litter, Scratching Posts", "feeding, litter care",
             ALL_YEAR),
        _sub("Aquarium", "Fish Tanks, Fish Food, Filters", "fishkeeping, relaxing", ALL_YEAR),
        _sub("Small Pets", "Cages, Hay, Small Pet Bedding", "feeding, housing", ALL_YEAR),
    ), _split("rubber, nylon, natural, plastic"),
       _split("puppy owners, cat owners, families, seniors")),
)  # fmt: skip

#: Kinds of product bought together. Listed one way; :func:`complements_of` makes it symmetric.
_COMPLEMENTS: dict[str, str] = {
    "Cookware": "Cookbooks, Olive Oil, Spices, Cutlery",
    "Cutlery": "Tableware, Table Linen",
    "Small Appliances": "Coffee Beans, Baking Mixes, Flour",
    "Tableware": "Glassware, Table Linen",
    "Glassware": "Juice, Candles",
    "Table Linen": "Candles, Vases",
    "Bedding": "Pillows, Mattress Toppers",
    "Pillows": "Mattress Toppers",
    "Candles": "Vases, Perfume",
    "Wall Art": "Vases, Candles",
    "Vases": "Planters",
    "Headphones": "Smartphones, Laptops",
    "Speakers": "Smartphones, Chargers",
    "Earbuds": "Smartphones, Phone Cases, Running Apparel",
    "Laptops": "Keyboards, Monitors, Chargers",
    "Keyboards": "Monitors",
    "Smartphones": "Phone Cases, Chargers",
    "Cameras": "Lenses, Tripods, Backpacks",
    "Lenses": "Tripods",
    "Dresses": "Sandals, Perfume, Lipstick",
    "Blouses": "Skirts, Jackets",
    "Skirts": "Boots",
    "Shirts": "Trousers, Suits, Cologne",
    "Trousers": "Sneakers",
    "Suits": "Cologne",
    "Jackets": "Boots, Backpacks",
    "Raincoats": "Boots, Bike Lights",
    "Winter Coats": "Boots, Sleeping Bags",
    "Boots": "Hiking Poles",
    "Sandals": "Swimsuits",
    "Yoga Mats": "Resistance Bands, Water Bottles, Running Apparel",
    "Dumbbells": "Resistance Bands, Yoga Mats",
    "Running Shoes": "Running Apparel, Sports Watches, Water Bottles",
    "Sports Watches": "Chargers",
    "Bikes": "Helmets, Bike Lights, Water Bottles",
    "Helmets": "Bike Lights, Scooters",
    "Swimsuits": "Goggles, Swim Caps, Sunscreen",
    "Goggles": "Swim Caps",
    "Tents": "Sleeping Bags, Camp Stoves, Backpacks",
    "Sleeping Bags": "Backpacks",
    "Camp Stoves": "Cookware, Coffee Beans",
    "Backpacks": "Water Bottles, Hiking Poles",
    "Planters": "Seeds, Garden Tools",
    "Garden Tools": "Seeds",
    "Fishing Rods": "Reels, Tackle Boxes",
    "Reels": "Tackle Boxes",
    "Moisturisers": "Cleansers, Sunscreen, Foundation, Body Mist",
    "Lipstick": "Foundation, Mascara",
    "Foundation": "Mascara",
    "Shampoo": "Conditioner, Hair Dryers",
    "Perfume": "Body Mist",
    "Building Blocks": "Marble Runs, Activity Books, Model Kits",
    "Marble Runs": "Puzzles",
    "Teddy Bears": "Picture Books, Plush Animals",
    "Puppets": "Picture Books, Early Readers",
    "Board Games": "Card Games, Chips",
    "Puzzles": "Activity Books, Early Readers",
    "Water Guns": "Swimsuits, Sunscreen, Kites",
    "Scooters": "Kites",
    "Novels": "Thrillers, Tea",
    "Fantasy": "Novels, Board Games",
    "Biographies": "History",
    "History": "Science",
    "Science": "Model Kits",
    "Cookbooks": "Spices, Pasta",
    "Baking Books": "Flour, Baking Mixes, Sprinkles",
    "Diet Guides": "Nuts, Yoga Mats",
    "Picture Books": "Early Readers",
    "Coffee Beans": "Chocolate",
    "Tea": "Chocolate",
    "Juice": "Chips",
    "Nuts": "Chocolate, Hiking Poles",
    "Pasta": "Olive Oil, Spices",
    "Olive Oil": "Spices",
    "Flour": "Baking Mixes",
    "Sprinkles": "Baking Mixes",
    "Dog Food": "Dog Toys, Leashes",
    "Dog Toys": "Leashes",
    "Cat Food": "Cat Litter, Scratching Posts",
    "Fish Tanks": "Filters, Fish Food",
    "Cages": "Hay, Small Pet Bedding",
    "Hay": "Small Pet Bedding",
}


@dataclass(frozen=True)
class Leaf:
    """A leaf kind of product with its place in the taxonomy."""

    top: TopCategory
    sub: Subcategory
    name: str

    @property
    def path(self) -> str:
        return PATH_SEPARATOR.join((self.top.name, self.sub.name, self.name))


@cache
def leaves() -> tuple[Leaf, ...]:
    """Every leaf kind, in taxonomy order (the order the generator indexes them by)."""
    return tuple(
        Leaf(top, sub, name) for top in TAXONOMY for sub in top.subcategories for name in sub.leaves
    )


@cache
def leaf_by_name() -> dict[str, Leaf]:
    return {leaf.name: leaf for leaf in leaves()}


@cache
def complements_of(name: str) -> tuple[str, ...]:
    """Kinds bought together with ``name`` (symmetric, in taxonomy order); empty if unknown."""
    related = set(_split(_COMPLEMENTS[name])) if name in _COMPLEMENTS else set()
    related |= {other for other, text in _COMPLEMENTS.items() if name in _split(text)}
    return tuple(leaf.name for leaf in leaves() if leaf.name in related)


@cache
def substitutes_of(name: str) -> tuple[str, ...]:
    """Kinds that can replace ``name``: its siblings in the same subcategory, complements aside."""
    leaf = leaf_by_name().get(name)
    if leaf is None:
        return ()
    paired = set(complements_of(name))
    return tuple(other for other in leaf.sub.leaves if other != name and other not in paired)


@cache
def bought_after_of(name: str) -> tuple[str, ...]:
    """Kinds people add once they own ``name``: the complements it lists, read as a direction.

    The complement table lists each pair once, from the anchor purchase to what goes with it
    ("Cookware" lists "Olive Oil"), so the listed side is what follows the anchor.
    """
    listed = set(_split(_COMPLEMENTS[name])) if name in _COMPLEMENTS else set()
    return tuple(leaf.name for leaf in leaves() if leaf.name in listed)


@cache
def bought_before_of(name: str) -> tuple[str, ...]:
    """Kinds whose owners go on to buy ``name``: the anchors that list it as a complement."""
    anchors = {other for other, text in _COMPLEMENTS.items() if name in _split(text)}
    return tuple(leaf.name for leaf in leaves() if leaf.name in anchors)
