"""Per-topic English vocabularies and sentence templates for the generated network.

Each topic has the same number of nouns, adjectives and gerunds so that the generator
can index them with Spark built-ins (``element_at`` on array literals). The words are
ordinary English, so a pretrained language model sees the topics in the text.
"""

from __future__ import annotations

# name: (nouns[20], adjectives[8], gerunds[6])
TOPICS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "cooking": (
        ["recipe", "oven", "garlic", "sourdough", "risotto", "skillet", "basil", "pasta",
         "curry", "dumplings", "broth", "marinade", "pastry", "lasagna", "spices", "butter",
         "noodles", "salad", "stew", "dessert"],
        ["crispy", "savory", "homemade", "tender", "spicy", "buttery", "smoky", "tangy"],
        ["baking", "roasting", "simmering", "grilling", "kneading", "braising"],
    ),
    "football": (
        ["striker", "goalkeeper", "penalty", "derby", "midfield", "transfer", "league", "referee",
         "stadium", "offside", "tactics", "coach", "fixture", "header", "corner", "defender",
         "trophy", "season", "captain", "winger"],
        ["clinical", "tactical", "relegated", "unbeaten", "physical", "attacking", "defensive", "late"],
        ["pressing", "scoring", "defending", "dribbling", "passing", "tackling"],
    ),
    "programming": (
        ["compiler", "function", "database", "repository", "algorithm", "framework", "debugger",
         "library", "server", "container", "thread", "query", "variable", "interface", "refactor",
         "terminal", "kernel", "pipeline", "module", "endpoint"],
        ["asynchronous", "typed", "recursive", "distributed", "legacy", "concurrent", "open-source", "scalable"],
        ["debugging", "deploying", "refactoring", "compiling", "testing", "profiling"],
    ),
    "travel": (
        ["passport", "itinerary", "hostel", "airport", "backpack", "island", "museum", "train",
         "border", "beach", "village", "visa", "luggage", "harbour", "temple", "mountains",
         "ferry", "market", "hotel", "journey"],
        ["remote", "scenic", "budget", "coastal", "historic", "crowded", "tropical", "overnight"],
        ["hiking", "exploring", "wandering", "sightseeing", "camping", "sailing"],
    ),
    "music": (
        ["guitar", "album", "chorus", "drummer", "melody", "vinyl", "concert", "lyrics", "synth",
         "bassline", "festival", "playlist", "studio", "chord", "orchestra", "piano", "remix",
         "harmony", "tempo", "encore"],
        ["acoustic", "melodic", "distorted", "live", "soulful", "catchy", "orchestral", "lofi"],
        ["recording", "jamming", "composing", "mixing", "touring", "rehearsing"],
    ),
    "fitness": (
        ["workout", "deadlift", "treadmill", "protein", "marathon", "squat", "stretching", "gym",
         "cardio", "kettlebell", "posture", "stamina", "dumbbell", "sprint", "recovery", "yoga",
         "muscles", "endurance", "pushups", "trainer"],
        ["intense", "lean", "aerobic", "daily", "sore", "explosive", "steady", "strong"],
        ["lifting", "running", "cycling", "rowing", "training", "swimming"],
    ),
    "photography": (
        ["camera", "lens", "aperture", "shutter", "tripod", "portrait", "exposure", "sensor",
         "landscape", "lighting", "flash", "frame", "negative", "darkroom", "zoom", "focus",
         "composition", "sunset", "print", "filter"],
        ["wide-angle", "grainy", "sharp", "monochrome", "overexposed", "candid", "vivid", "blurry"],
        ["shooting", "editing", "framing", "developing", "printing", "scouting"],
    ),
    "gardening": (
        ["tomatoes", "compost", "seedlings", "greenhouse", "soil", "roses", "mulch", "shovel",
         "orchard", "weeds", "herbs", "fertilizer", "pots", "tulips", "hedge", "vegetables",
         "sprinkler", "blossom", "bulbs", "lawn"],
        ["organic", "perennial", "shady", "fertile", "blooming", "raised", "leafy", "drought-tolerant"],
        ["planting", "pruning", "watering", "weeding", "harvesting", "composting"],
    ),
    "finance": (
        ["portfolio", "dividend", "mortgage", "budget", "index", "bond", "inflation", "savings",
         "pension", "stocks", "interest", "broker", "taxes", "loan", "equity", "crypto",
         "earnings", "market", "fund", "debt"],
        ["volatile", "passive", "diversified", "bullish", "bearish", "long-term", "risky", "frugal"],
        ["investing", "saving", "trading", "budgeting", "rebalancing", "hedging"],
    ),
    "gaming": (
        ["console", "controller", "boss", "quest", "multiplayer", "speedrun", "level", "loot",
         "dungeon", "patch", "character", "strategy", "tournament", "graphics", "headset",
         "server", "campaign", "sandbox", "shooter", "roguelike"],
        ["competitive", "pixelated", "open-world", "co-op", "hardcore", "retro", "immersive", "ranked"],
        ["grinding", "streaming", "raiding", "crafting", "respawning", "speedrunning"],
    ),
    "astronomy": (
        ["telescope", "nebula", "galaxy", "planet", "eclipse", "comet", "orbit", "asteroid",
         "constellation", "meteor", "moon", "satellite", "supernova", "observatory", "star",
         "rocket", "cosmos", "spectrum", "exoplanet", "aurora"],
        ["celestial", "distant", "lunar", "solar", "faint", "interstellar", "bright", "cosmic"],
        ["stargazing", "observing", "orbiting", "launching", "tracking", "imaging"],
    ),
    "pets": (
        ["puppy", "kitten", "leash", "aquarium", "parrot", "vet", "treats", "collar", "hamster",
         "litter", "kennel", "grooming", "rabbit", "paws", "tortoise", "harness", "fur",
         "whiskers", "shelter", "terrier"],
        ["fluffy", "playful", "adopted", "shy", "loyal", "energetic", "sleepy", "curious"],
        ["walking", "feeding", "cuddling", "fetching", "purring", "napping"],
    ),
    "cinema": (
        ["director", "screenplay", "sequel", "trailer", "actor", "documentary", "cinematography",
         "premiere", "thriller", "soundtrack", "cast", "plot", "villain", "franchise", "comedy",
         "festival", "animation", "scene", "script", "blockbuster"],
        ["gripping", "underrated", "cinematic", "overhyped", "haunting", "hilarious", "indie", "epic"],
        ["watching", "filming", "reviewing", "casting", "streaming", "rewatching"],
    ),
    "cycling": (
        ["bike", "saddle", "derailleur", "helmet", "peloton", "chain", "climb", "tyres",
         "handlebars", "commute", "gravel", "pedals", "frame", "sprint", "cadence", "brakes",
         "velodrome", "route", "jersey", "puncture"],
        ["uphill", "carbon", "tubeless", "aero", "muddy", "fixed-gear", "long-distance", "steep"],
        ["riding", "climbing", "descending", "commuting", "touring", "pedaling"],
    ),
    "books": (
        ["novel", "author", "chapter", "library", "poetry", "paperback", "memoir", "bookshelf",
         "fantasy", "narrator", "sequel", "publisher", "mystery", "biography", "manuscript",
         "bookstore", "trilogy", "prose", "anthology", "classic"],
        ["literary", "dystopian", "gripping", "annotated", "bestselling", "lyrical", "dense", "timeless"],
        ["reading", "writing", "annotating", "rereading", "publishing", "reviewing"],
    ),
    "coffee": (
        ["espresso", "grinder", "beans", "latte", "roast", "barista", "crema", "kettle",
         "aeropress", "cappuccino", "filter", "mug", "milk", "arabica", "brew", "cafe",
         "portafilter", "pourover", "caffeine", "aroma"],
        ["fruity", "bitter", "single-origin", "light-roast", "velvety", "strong", "fresh", "nutty"],
        ["brewing", "grinding", "tamping", "steaming", "tasting", "roasting"],
    ),
}

# General words that appear in every topic's posts (so that topics overlap a little).
NAMES = ["alex", "sam", "jordan", "taylor", "morgan", "casey", "riley", "jamie", "robin", "avery",
         "quinn", "devon", "kai", "nora", "leo", "maya"]

# %1$s noun, %2$s noun, %3$s adjective, %4$s gerund.
TEMPLATES = [
    "Just spent the afternoon %4$s and the %3$s %1$s made all the difference.",
    "Does anyone have tips on %1$s? My %2$s keeps letting me down.",
    "Hot take: a %3$s %1$s beats any fancy %2$s.",
    "Spent the weekend %4$s with friends, and the %1$s was %3$s.",
    "Looking for recommendations: which %1$s works best with a %3$s %2$s?",
    "Here is my %3$s guide to %1$s and %2$s for beginners.",
    "Still thinking about that %3$s %1$s from last week.",
    "Three things I learned about %1$s: patience, %2$s, and a %3$s mindset.",
    "Is %4$s worth it if you only care about the %1$s?",
    "Finally upgraded my %2$s, and %4$s feels %3$s now.",
    "Unpopular opinion: the %1$s matters more than the %2$s.",
    "What a %3$s day for %4$s, the %1$s was perfect.",
]

TITLE_TEMPLATES = [
    "%3$s %1$s",
    "%4$s with a %3$s %2$s",
    "My %1$s and %2$s",
    "On %4$s and the %1$s",
    "A %3$s take on %1$s",
]

BIO_TEMPLATE = "Into %1$s, %2$s and %4$s. Fan of anything %3$s."

N_NOUNS = 20
N_ADJS = 8
N_VERBS = 6

for _name, (_n, _a, _v) in TOPICS.items():  # the generator indexes with these sizes
    assert (len(_n), len(_a), len(_v)) == (N_NOUNS, N_ADJS, N_VERBS), _name
