"""Word lists the templates draw from. Short words keep prompts short for byte-level models."""

from __future__ import annotations

NAMES = (
    "Ava", "Ben", "Cai", "Dev", "Eli", "Fay", "Gus", "Ida", "Jon", "Kai", "Lea", "Max",
    "Noa", "Omar", "Pia", "Raj", "Sam", "Tia", "Uma", "Vic", "Wes", "Yui", "Zoe", "Ana",
)

# (singular, plural) things sold in shops.
GOODS = (
    ("pen", "pens"), ("book", "books"), ("cup", "cups"), ("hat", "hats"), ("shirt", "shirts"),
    ("bowl", "bowls"), ("lamp", "lamps"), ("sock", "socks"), ("mug", "mugs"), ("ball", "balls"),
    ("kite", "kites"), ("plant", "plants"), ("scarf", "scarves"), ("candle", "candles"),
    ("puzzle", "puzzles"), ("brush", "brushes"),
)

# Small things people share or pack.
SHAREABLES = (
    "stickers", "marbles", "apples", "cookies", "stamps", "beads", "shells", "coins",
    "pencils", "grapes", "buttons", "crayons",
)

VEHICLES = ("bike", "bus", "car", "boat", "train", "truck", "scooter", "tractor")

# (device, verb, products) for work-rate problems.
MACHINES = (
    ("printer", "prints", "pages"), ("oven", "bakes", "rolls"), ("robot", "packs", "boxes"),
    ("press", "stamps", "coins"), ("loom", "weaves", "scarves"), ("pump", "fills", "bottles"),
)

ACTIVITIES = ("trip", "movie", "hike", "class", "game", "shift", "flight", "concert")
LONG_THINGS = ("rope", "table", "scarf", "board", "hose", "ribbon", "fence", "shelf")
PLACES = ("camp", "the beach", "the farm", "school", "the lake", "a hotel")
HEAVY_THINGS = ("sack", "parcel", "bag", "box", "crate", "pumpkin")
AREAS = ("garden", "room", "patio", "rug", "field", "pool", "yard", "deck")
SQUARES = ("tile", "card", "frame", "napkin", "window", "mat")
NOTES = (10, 20, 50, 100)

# (comparative, top superlative, bottom superlative) for ordering puzzles.
ORDER_RELATIONS = (
    ("taller", "tallest", "shortest"), ("older", "oldest", "youngest"),
    ("faster", "fastest", "slowest"), ("heavier", "heaviest", "lightest"),
)

# Real words for string transforms: lowercase, 3-7 letters, each has a vowel and a consonant.
WORDS = (
    "apple", "river", "garden", "planet", "window", "basket", "candle", "dragon", "forest", "guitar",
    "hammer", "island", "jacket", "kitten", "ladder", "magnet", "needle", "orange", "pencil", "rabbit",
    "saddle", "tomato", "velvet", "walnut", "yellow", "zipper", "anchor", "bottle", "castle", "donkey",
    "engine", "falcon", "goblet", "helmet", "insect", "jungle", "kettle", "lemon", "mirror", "napkin",
    "otter", "pepper", "quiet", "rocket", "silver", "turtle", "unity", "violin", "wizard", "yogurt",
    "bread", "chair", "cloud", "dance", "eagle", "flame", "grape", "house", "juice", "knife",
    "light", "money", "night", "ocean", "piano", "queen", "radio", "sugar", "tiger", "uncle",
    "voice", "water", "zebra", "cat", "dog", "sun", "map", "cup", "egg", "fox", "hat", "ink",
    "jam", "key", "log", "net", "owl", "pig", "rug", "sea", "toy", "van", "web", "yak", "bell",
    "coat", "drum", "fish", "goat", "hill", "iron", "kite", "lake", "moon", "nest", "pear", "rain",
    "ship", "tree", "vase", "wolf", "barn", "corn", "duck", "frog", "gold", "harp", "leaf", "milk",
    "banana", "cherry", "pocket", "summer", "winter", "button", "carrot", "parrot", "butter",
)

# Consonant-vowel syllables for pseudo-words, which make the string tasks about letters rather
# than about memorised words, and give the generators far more distinct prompts.
CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
SYLLABLES = tuple(c + v for c in CONSONANTS for v in VOWELS)
