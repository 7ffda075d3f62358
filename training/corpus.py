"""Deterministic synthetic children's-story generator.

This module produces simple English stories (TinyStories-like in spirit) from a
hand-written probabilistic grammar.  Everything is generated here, from the word
lists below and ``random.Random(seed)``, so the text carries no third-party
licence: it is part of this repository (Apache-2.0).

The grammar keeps some coherence across sentences: a story has a main
character (with a name and matching pronouns), usually a friend or helper, a
place, a wanted object or goal, a problem and a resolution, and it ends with a
closing line and often a moral.

Public API::

    generate(n_stories: int, seed: int) -> list[str]

The output depends only on ``n_stories`` and ``seed`` (pure Python, no global
random state), so the same call always gives the same stories.
"""

from __future__ import annotations

import random

__all__ = ["generate", "generate_story"]

# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

GIRL_NAMES = [
    "Lily", "Mia", "Emma", "Sara", "Anna", "Lucy", "Zoe", "Ella", "Amy", "Rosa",
    "Nina", "Ivy", "Maya", "Grace", "Chloe", "Ruby", "Daisy", "Hannah", "Sophie",
    "Kate", "Molly", "Jenny", "Bella", "Nora", "Tara", "Leah", "Alice", "Julia",
    "Clara", "Eva", "Olivia", "Poppy", "Iris", "Luna", "Stella", "Wendy", "Fiona",
    "Paula", "Hazel", "Mira",
]
BOY_NAMES = [
    "Tom", "Ben", "Max", "Sam", "Jack", "Leo", "Tim", "Finn", "Noah", "Jake",
    "Oscar", "Henry", "Luke", "Adam", "Ryan", "Eli", "Theo", "Owen", "Milo",
    "Danny", "Peter", "Joe", "Alex", "Ollie", "Kai", "Hugo", "Charlie", "George",
    "Harry", "Lucas", "Simon", "Victor", "Oliver", "Freddie", "Arthur", "Billy",
    "Dylan", "Martin", "Felix", "Ivan",
]
PET_NAMES = [
    "Spot", "Fluffy", "Bubbles", "Pip", "Coco", "Buddy", "Sunny", "Patch",
    "Whiskers", "Button", "Pebble", "Biscuit", "Ziggy", "Dot", "Pepper",
    "Bean", "Nutmeg", "Toffee", "Sparky", "Mittens", "Rusty", "Shadow",
    "Clover", "Maple", "Squeaky", "Boots", "Ginger", "Puddle", "Twinkle", "Snowy",
]

# (noun, sound verb, movement verb, home)
ANIMALS = [
    ("cat", "meowed", "ran", "a warm basket"),
    ("dog", "barked", "ran", "a little kennel"),
    ("puppy", "barked", "ran", "a soft bed"),
    ("kitten", "meowed", "ran", "a cozy box"),
    ("bunny", "squeaked", "hopped", "a hole under the hedge"),
    ("rabbit", "squeaked", "hopped", "a burrow"),
    ("bird", "chirped", "flew", "a nest in a tall tree"),
    ("duck", "quacked", "waddled", "a pond"),
    ("frog", "croaked", "jumped", "a green pond"),
    ("mouse", "squeaked", "ran", "a tiny hole in the wall"),
    ("bear", "growled", "walked", "a big cave"),
    ("fox", "yipped", "ran", "a den in the woods"),
    ("owl", "hooted", "flew", "a hollow tree"),
    ("squirrel", "chattered", "ran", "a nest in an oak tree"),
    ("pig", "oinked", "trotted", "a muddy pen"),
    ("cow", "mooed", "walked", "a red barn"),
    ("horse", "neighed", "trotted", "a stable"),
    ("lamb", "baaed", "skipped", "a green field"),
    ("turtle", "sighed", "crawled", "a quiet pond"),
    ("hedgehog", "sniffed", "shuffled", "a pile of leaves"),
    ("elephant", "trumpeted", "walked", "a sunny valley"),
    ("lion", "roared", "walked", "a grassy hill"),
    ("monkey", "laughed", "climbed", "a tall tree"),
    ("penguin", "squawked", "waddled", "an icy rock"),
    ("dragon", "roared", "flew", "a cave on a mountain"),
    ("fish", "blew bubbles", "swam", "a blue river"),
    ("goat", "bleated", "climbed", "a rocky hill"),
    ("chick", "peeped", "hopped", "a warm nest"),
    ("butterfly", "fluttered", "fluttered", "a flower garden"),
    ("zebra", "snorted", "galloped", "a wide grassland"),
    ("giraffe", "hummed", "walked", "a sunny plain"),
    ("snail", "sighed", "crept", "a cool, damp leaf"),
    ("crab", "clicked", "scuttled", "a rock pool"),
    ("deer", "snorted", "leaped", "a quiet forest"),
    ("koala", "yawned", "climbed", "a tall gum tree"),
    ("badger", "grunted", "shuffled", "a deep burrow"),
]

ANIMAL_ADJS = [
    "little", "small", "fluffy", "tiny", "friendly", "brown", "white", "grey",
    "spotted", "young", "sleepy", "clever", "funny", "old", "soft", "shy",
    "striped", "chubby", "speedy", "silly", "gentle", "noisy", "hungry", "busy",
]
KID_ADJS = [
    "little", "kind", "brave", "curious", "happy", "shy", "clever", "cheerful",
    "playful", "gentle", "busy", "smart", "friendly", "young", "funny", "quiet",
    "polite", "careful", "lively", "thoughtful", "honest", "helpful", "silly", "bright",
]

WISE_HELPERS = [
    ("a wise old owl", "the owl", "it"),
    ("a kind old man", "the old man", "he"),
    ("a friendly old woman", "the old woman", "she"),
    ("a big gentle bear", "the bear", "it"),
    ("a tall giraffe", "the giraffe", "it"),
    ("a helpful farmer", "the farmer", "he"),
    ("a smiling baker", "the baker", "she"),
    ("a little fairy", "the fairy", "she"),
    ("a busy beaver", "the beaver", "it"),
    ("a kind police officer", "the police officer", "she"),
    ("a happy fisherman", "the fisherman", "he"),
    ("a clever crow", "the crow", "it"),
]

PARENTS = [("mom", "she"), ("dad", "he"), ("grandma", "she"), ("grandpa", "he")]

# (phrase with "the", preposition to go there, things there)
PLACES = [
    ("the park", "to", ["a big slide", "a swing", "a sandbox", "a tall tree"]),
    ("the forest", "into", ["a tall tree", "a mossy log", "a little path", "a bush full of berries"]),
    ("the beach", "to", ["the sand", "the waves", "a big rock", "a sand castle"]),
    ("the garden", "into", ["a flower bed", "a small pond", "a vegetable patch", "an apple tree"]),
    ("the farm", "to", ["a red barn", "a haystack", "a muddy pond", "a wooden fence"]),
    ("the lake", "to", ["a small boat", "a wooden dock", "the water", "some tall reeds"]),
    ("the meadow", "to", ["many flowers", "a tall oak", "a little stream", "a patch of clover"]),
    ("the hill", "up", ["a big rock", "a windy top", "a lonely tree", "a grassy slope"]),
    ("the zoo", "to", ["a big cage", "a pond with ducks", "a tall fence", "a snack stand"]),
    ("the market", "to", ["a fruit stall", "a toy stall", "a flower stand", "a bread stall"]),
    ("the river", "to", ["a small bridge", "some smooth stones", "a big log", "the water"]),
    ("the woods", "into", ["a hollow log", "a tall pine", "a dark path", "a pile of leaves"]),
    ("the playground", "to", ["a red slide", "the swings", "a climbing frame", "a sandbox"]),
    ("the village", "to", ["a little shop", "a stone well", "a bakery", "a town square"]),
    ("the castle", "to", ["a tall tower", "a big gate", "a long hall", "a garden with roses"]),
    ("the library", "to", ["a tall shelf", "a cozy chair", "a big window", "a reading corner"]),
    ("the school", "to", ["a bright classroom", "the playground", "a big desk", "a bookshelf"]),
    ("the pond", "to", ["a lily pad", "some reeds", "a flat stone", "the water"]),
    ("the mountain", "up", ["a snowy top", "a narrow path", "a big boulder", "a cold stream"]),
    ("the kitchen", "into", ["the big table", "the oven", "a shelf", "the sink"]),
    ("the island", "to", ["a palm tree", "a sandy shore", "a hidden cove", "a coconut tree"]),
    ("the jungle", "into", ["thick vines", "a huge leaf", "a waterfall", "a muddy path"]),
    ("the museum", "to", ["an old statue", "a dinosaur skeleton", "a glass case", "a painting"]),
    ("the bakery", "to", ["a warm oven", "a tray of buns", "a tall cake", "a jar of cookies"]),
    ("the orchard", "to", ["an apple tree", "a pear tree", "a wooden ladder", "a basket of fruit"]),
    ("the backyard", "into", ["a tree house", "a small shed", "a sandpit", "a swing set"]),
]

COLORS = ["red", "blue", "green", "yellow", "purple", "pink", "orange", "white", "golden", "silver",
          "black", "brown", "striped", "spotty"]
SIZES = ["big", "small", "little", "shiny", "soft", "new", "old", "round", "tiny", "pretty",
         "sparkly", "huge", "fuzzy", "bouncy", "magic", "special"]

# (object noun, verb phrase for using it)
TOYS = [
    ("ball", "play catch with it"), ("kite", "fly it in the wind"),
    ("teddy bear", "hug it at night"), ("toy car", "race it on the floor"),
    ("doll", "play house with it"), ("toy boat", "sail it on the water"),
    ("drum", "play loud music"), ("hat", "wear it every day"),
    ("balloon", "hold it high"), ("book", "read it before bed"),
    ("bike", "ride it down the hill"), ("truck", "fill it with sand"),
    ("crayon box", "draw pictures"), ("puzzle", "put all the pieces together"),
    ("scarf", "keep warm in the snow"), ("shell", "listen to the sea"),
    ("stone", "keep it in a pocket"), ("flower", "give it to a friend"),
    ("feather", "tickle a friend"), ("whistle", "make a happy sound"),
    ("blanket", "stay warm"), ("bucket", "carry water"),
    ("robot", "build a big tower"), ("train", "make it go around the track"),
    ("umbrella", "stay dry in the rain"), ("marble", "roll it down the slide"),
    ("yo-yo", "make it spin up and down"), ("sled", "slide down the snowy hill"),
    ("wagon", "pull friends around the yard"), ("necklace", "wear it to the party"),
    ("paintbrush", "paint pretty pictures"), ("flashlight", "see in the dark"),
    ("jar", "catch fireflies at night"), ("map", "find hidden treasure"),
]
FOODS = [
    "cake", "cookie", "apple", "pie", "sandwich", "banana", "carrot", "cupcake",
    "muffin", "pear", "strawberry", "ice cream", "piece of bread", "bowl of soup",
    "honey pot", "bunch of grapes", "slice of pizza", "orange", "candy", "pancake",
    "lollipop", "plum", "peach", "cheese sandwich", "blueberry pie", "chocolate bar",
    "bowl of cherries", "waffle", "bag of popcorn", "watermelon",
]

SNACKS = [
    "some apples", "a few cookies", "two sandwiches", "some juice", "a bag of grapes",
    "some bread and cheese", "a big lunch", "some carrots", "a basket of berries",
]

FEELINGS_GOOD = ["happy", "glad", "excited", "proud", "cheerful", "thankful", "calm", "joyful",
                 "delighted", "peaceful"]
FEELINGS_BAD = ["sad", "scared", "worried", "upset", "lonely", "grumpy", "nervous", "tired",
                "frightened", "unhappy", "confused"]

SKILLS = [
    ("swim", "in the lake", "kicked and splashed", "floated on the water"),
    ("ride a bike", "in the park", "wobbled and fell down", "rode all the way to the gate"),
    ("climb a tree", "in the garden", "slipped and slid down", "reached the highest branch"),
    ("jump rope", "on the playground", "tripped over the rope", "jumped ten times in a row"),
    ("bake a cake", "in the kitchen", "spilled the flour everywhere", "made a soft, sweet cake"),
    ("read a book", "at home", "got stuck on the long words", "read the whole story"),
    ("sing a song", "at school", "forgot the words", "sang the song from start to end"),
    ("dance", "in the living room", "stepped on a toe", "danced round and round"),
    ("paint a picture", "by the window", "made a big mess", "painted a bright sun and a tree"),
    ("fly a kite", "on the hill", "watched it fall down", "made the kite fly high in the sky"),
    ("skate", "on the ice", "slipped and bumped a knee", "skated in a big circle"),
    ("whistle", "on the porch", "only blew air", "whistled a happy tune"),
]

GAMES = [
    "tag", "hide and seek", "catch", "chase", "ball", "pretend", "dress up",
    "jump rope", "leapfrog", "hopscotch",
]

SOUNDS = [
    "a loud noise", "a strange sound", "a soft cry", "a funny squeak", "a big bang",
    "a tiny voice", "a rustle in the bushes", "a splash",
]

ADVERBS = ["slowly", "quickly", "happily", "quietly", "carefully", "softly", "gently", "shyly",
           "proudly", "sleepily", "bravely", "kindly"]

SCENERY = [
    "The sun was warm and the sky was blue", "The birds were singing in the trees",
    "A soft wind was blowing", "There were white clouds in the sky",
    "The grass was wet with dew", "Everything was quiet and calm",
    "The leaves were red and yellow", "Little flowers were everywhere",
    "The air smelled like rain", "The snow was white and deep",
    "Bees were buzzing around the flowers", "The sky was grey and cloudy",
    "The water sparkled in the sun", "It was a perfect day to play",
    "A rainbow was shining over the hills", "The wind was cold, but the sun was bright",
]

WEATHER_START = [
    "One sunny morning", "One bright day", "One warm afternoon", "One cold morning",
    "One windy day", "On a rainy afternoon", "One snowy day", "Early one morning",
    "One day", "One day", "One day", "Later that day", "On a quiet evening",
    "One summer day", "One autumn morning", "One spring day",
]

ARC_MORALS = {
    "quest": ["friends help each other", "it is okay to ask for help", "working together makes things easy",
              "a good friend is a great treasure", "you should be careful"],
    "lost": ["it is okay to ask for help", "friends help each other", "you should be careful",
             "you should never give up", "being patient is important"],
    "friend": ["it is good to be brave", "being kind is the best thing", "a good friend is a great treasure",
               "it is good to say hello to new friends"],
    "skill": ["you should never give up", "trying again is how we learn", "being patient is important",
              "it is okay to ask for help", "practice makes things easier"],
    "share": ["it is good to share", "it is good to say sorry", "being kind is the best thing",
              "sharing makes everyone happy"],
    "rescue": ["helping others makes you happy too", "being kind is the best thing",
               "we should be gentle with animals", "it is good to help"],
    "party": ["friends make every day special", "it is good to share", "being kind is the best thing",
              "small problems can be fixed"],
    "garden": ["being patient is important", "good things take time", "you should never give up"],
    "dark": ["it is good to be brave", "there is nothing to fear in the dark", "it is okay to ask for help"],
    "adventure": ["it is good to be brave", "working together makes things easy", "it is okay to ask for help",
                  "you should be careful", "friends help each other"],
}

MORALS = [
    "it is good to share", "friends help each other", "it is good to be brave",
    "it is okay to ask for help", "being kind is the best thing", "you should never give up",
    "it is important to listen", "it is good to say sorry", "trying again is how we learn",
    "a good friend is a great treasure", "being patient is important",
    "it is good to tell the truth", "helping others makes you happy too",
    "you should be careful", "working together makes things easy",
]

PROBLEMS_OBJECT = [
    # (problem sentence with {obj}, resolution options)
    ("the wind blew the {obj} high into a tree", [
        "{helper} climbed up the tree and brought the {obj} down",
        "they shook the branch until the {obj} fell down",
        "{helper} used a long stick to push the {obj} off the branch",
    ]),
    ("the {obj} rolled into the river", [
        "{helper} found a long branch and pulled the {obj} out of the water",
        "they ran along the bank and caught the {obj} by a rock",
        "a kind duck pushed the {obj} back to the shore",
    ]),
    ("the {obj} fell into a deep hole", [
        "{helper} reached down with a long arm and got the {obj}",
        "they tied a rope to a bucket and lifted the {obj} out",
        "a small mouse ran into the hole and pushed the {obj} up",
    ]),
    ("a big dog grabbed the {obj} and ran away", [
        "{helper} threw a stick, and the dog dropped the {obj} to chase it",
        "they followed the dog and asked nicely, and the dog gave the {obj} back",
        "the dog only wanted to play, so they played together and the dog gave back the {obj}",
    ]),
    ("the {obj} got stuck in the mud", [
        "{helper} pulled and pulled until the {obj} came out",
        "they dug around the {obj} with their hands and lifted it out",
        "they washed the {obj} in a puddle and it was clean again",
    ]),
    ("the {obj} broke into two pieces", [
        "{helper} fixed the {obj} with some tape and glue",
        "they took the {obj} home, and {parent} helped to fix it",
        "they made the two pieces into something new and fun",
    ]),
    ("the {obj} was on a high shelf", [
        "{helper} brought a small chair so they could reach the {obj}",
        "they stood on a box and got the {obj} down together",
        "{helper} was tall enough to reach the {obj}",
    ]),
]

PROBLEMS_WORLD = [
    ("dark clouds came and it started to rain", [
        "they hid under a big tree until the rain stopped",
        "{helper} opened a big umbrella and they stayed dry",
        "they ran into a little hut and waited for the sun",
    ]),
    ("they could not find the way home", [
        "{helper} knew the way and showed them the path home",
        "they followed the little stream, and it led them home",
        "they looked at the stars and found the way back",
    ]),
    ("the old bridge was broken", [
        "{helper} put a long log over the water so they could cross",
        "they found some stones in the water and stepped across",
        "they walked the long way around and found another bridge",
    ]),
    ("a big storm came with loud thunder", [
        "they held hands and waited in a safe place until it was quiet",
        "{helper} sang a song so nobody felt scared",
        "they went into a warm cave and waited for the storm to pass",
    ]),
    ("the night came and it got very dark", [
        "{helper} found some fireflies that lit the way",
        "the moon came out and showed them the path",
        "they found a lamp and walked home in its soft light",
    ]),
    ("a tall fence was in the way", [
        "{helper} found a small gate in the fence",
        "they helped each other climb over the fence",
        "they dug a small hole under the fence and crawled through",
    ]),
]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _a(word: str) -> str:
    w = word.lower()
    vowel = w[0] in "aeiou" or w.startswith(("honest", "hour"))
    return ("an " if vowel else "a ") + word


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


class _Char:
    """A story character with consistent name and pronouns."""

    def __init__(self, name: str, kind: str, gender: str, adj: str, is_animal: bool,
                 animal: tuple | None = None):
        self.name = name
        self.kind = kind  # girl / boy / cat / ...
        self.gender = gender
        self.adj = adj
        self.is_animal = is_animal
        self.animal = animal
        if gender == "f":
            self.he, self.him, self.his = "she", "her", "her"
        else:
            self.he, self.him, self.his = "he", "him", "his"

    @property
    def intro(self) -> str:
        return f"{_a(self.adj + ' ' + self.kind)} named {self.name}"

    @property
    def sound(self) -> str:
        return self.animal[1] if self.animal else "laughed"

    @property
    def moves(self) -> str:
        return self.animal[2] if self.animal else "ran"

    @property
    def home(self) -> str:
        return self.animal[3] if self.animal else "a little house"


def _make_char(rng: random.Random, used: set, animal_ok: bool = True, kid_ok: bool = True) -> _Char:
    if animal_ok and (not kid_ok or rng.random() < 0.35):
        animal = rng.choice(ANIMALS)
        name = rng.choice([n for n in PET_NAMES if n not in used] or PET_NAMES)
        gender = rng.choice("fm")
        ch = _Char(name, animal[0], gender, rng.choice(ANIMAL_ADJS), True, animal)
    else:
        gender = rng.choice("fm")
        pool = GIRL_NAMES if gender == "f" else BOY_NAMES
        name = rng.choice([n for n in pool if n not in used] or pool)
        kind = ("girl" if gender == "f" else "boy")
        ch = _Char(name, kind, gender, rng.choice(KID_ADJS), False)
    used.add(ch.name)
    return ch


FILLER_P = 0.15  # chance of a small "colour" sentence after a story sentence


def _filler(rng: random.Random, hero: "_Char", friend: "_Char") -> str:
    # Only the hero: the friend may not have been introduced yet.
    who = hero
    adv = rng.choice(ADVERBS)
    return rng.choice([
        f"{who.he} looked around",
        f"{who.he} took a deep breath",
        f"{who.he} thought for a moment",
        f"{who.name} nodded {adv}",
        f"{who.name} smiled {adv}",
        f"{who.he} scratched {who.his} head",
        f"{who.he} rubbed {who.his} eyes",
        f"{who.he} looked up at the {rng.choice(['sky', 'trees', 'clouds', 'hills'])}",
        f"a little {rng.choice(['bird', 'butterfly', 'bee', 'leaf'])} {rng.choice(['flew', 'floated', 'drifted'])} by",
        "it was very quiet",
        f"{who.name} {rng.choice(['giggled', 'laughed', 'sighed', 'yawned', 'blinked', 'waved'])}",
        f"{who.his} {rng.choice(['tummy rumbled', 'heart beat fast', 'cheeks turned pink', 'nose twitched'])}",
        f"{who.he} {rng.choice(['walked', 'stepped', 'moved'])} {adv} closer",
        f"{who.he} did not say anything for a while",
        f"{who.name} held {who.his} breath",
    ])


class _Story:
    """Accumulates sentences in paragraphs."""

    def __init__(self, rng: random.Random, hero: "_Char | None" = None, friend: "_Char | None" = None):
        self.rng = rng
        self.hero = hero
        self.friend = friend
        self.paras: list[list[str]] = [[]]

    def _add(self, s: str) -> None:
        s = _cap(s.strip())
        if s[-1] not in '.!?"':
            s += "."
        self.paras[-1].append(s)

    def say(self, *options: str) -> None:
        self._add(self.rng.choice(options))
        if self.hero is not None and self.rng.random() < FILLER_P:
            self._add(_filler(self.rng, self.hero, self.friend or self.hero))

    def para(self) -> None:
        if self.paras[-1]:
            self.paras.append([])

    def text(self) -> str:
        return "\n\n".join(" ".join(p) for p in self.paras if p)


def _q(rng: random.Random, speaker: str, line: str, verb: str = "said") -> str:
    """Format a line of dialogue in one of several styles."""
    end = line[-1]
    body = line[:-1] if end in ".!?" else line
    style = rng.random()
    if end == "?" and verb == "said":
        verb = "asked"
    if style < 0.45:
        punct = "," if end == "." else end
        return f'"{_cap(body)}{punct}" {verb} {speaker}.'
    if style < 0.8:
        return f'{speaker} {verb}, "{_cap(body)}{end}"'
    punct = "," if end == "." else end
    rest = f'"{_cap(body)}{punct}" {speaker} {verb}.'
    return rest


# ---------------------------------------------------------------------------
# Story beats
# ---------------------------------------------------------------------------


def _opening(st: _Story, hero: _Char, place: tuple, lonely: bool = False) -> None:
    rng = st.rng
    pname = place[0]
    r = rng.random()
    if r < 0.6:
        st.say(
            f"Once upon a time, there was {hero.intro}",
            f"Once upon a time, there was {hero.intro}. {_cap(hero.he)} lived in {hero.home}",
            f"Once upon a time, in a small village, there lived {hero.intro}",
            f"Once upon a time, {hero.intro} lived near {pname}",
            f"Once upon a time, there was {_a(hero.adj + ' ' + hero.kind)}. {_cap(hero.his)} name was {hero.name}",
        )
    elif r < 0.72:
        st.say(
            f"There once was {hero.intro}",
            f"There was once {_a(hero.adj + ' ' + hero.kind)} called {hero.name}",
        )
    elif r < 0.82:
        st.say(
            f"Long ago, {hero.intro} lived near {pname}",
            f"A long time ago, there was {hero.intro}",
        )
    else:
        st.say(
            f"{hero.name} was {_a(hero.adj + ' ' + hero.kind)}",
            f"{hero.name} was {_a(hero.adj + ' ' + hero.kind)} who lived near {pname}",
            f"{hero.name} the {hero.kind} lived in {hero.home}" if hero.is_animal
            else f"{hero.name} was a {hero.kind} who lived in a little house",
        )
    # a trait sentence
    if rng.random() < 0.8:
        things = [
            f"{hero.he} loved to play outside",
            f"{hero.he} liked to {rng.choice(['sing', 'dance', 'run', 'jump', 'draw', 'explore', 'read', 'laugh'])} all day",
            f"every day, {hero.he} {hero.moves} around {pname}",
            f"{hero.he} was always {rng.choice(['happy', 'curious', 'busy', 'kind', 'hungry', 'smiling'])}",
            f"{hero.he} liked to help {hero.his} {rng.choice(PARENTS)[0]}",
            f"{hero.he} liked to look at the {rng.choice(['sky', 'clouds', 'stars', 'birds', 'flowers', 'trees'])}",
            f"{hero.his} favorite color was {rng.choice(COLORS)}",
            f"{hero.he} did not like loud noises",
        ]
        st.say(rng.choice(things))


def _start_day(st: _Story, hero: _Char, place: tuple) -> None:
    rng = st.rng
    when = rng.choice(WEATHER_START)
    if rng.random() < 0.3:
        st.say(*SCENERY)
    st.say(
        f"{when}, {hero.name} went {place[1]} {place[0]}",
        f"{when}, {hero.name} decided to go {place[1]} {place[0]}",
        f"{when}, {hero.name} {hero.moves} {place[1]} {place[0]}",
        f"{when}, {hero.name} wanted to visit {place[0]}",
    )


def _arc_quest(st: _Story, hero: _Char, friend: _Char, place: tuple, used: set) -> None:
    """Hero wants an object; finds it; a problem; friend helps."""
    rng = st.rng
    toy, use = rng.choice(TOYS)
    adj = rng.choice(COLORS + SIZES)
    obj = f"{adj} {toy}"
    st.say(
        f"{hero.name} wanted {_a(obj)} more than anything",
        f"{hero.name} really wanted {_a(obj)}",
        f"{hero.name} had a dream. {_cap(hero.he)} wanted {_a(obj)}",
    )
    st.say(
        f"{_cap(hero.he)} wanted to {use}",
        f"With {_a(toy)}, {hero.he} could {use}",
        _q(rng, hero.name, f"If I had {_a(obj)}, I could {use}!"),
    )
    st.para()
    _start_day(st, hero, place)
    spot = rng.choice(place[2])
    st.say(
        f"There, near {spot}, {hero.he} saw {_a(obj)}",
        f"Next to {spot}, {hero.he} found {_a(obj)}",
        f"{_cap(hero.he)} looked behind {spot} and saw {_a(obj)}",
    )
    st.say(
        _q(rng, hero.name, "Wow! Look at that!"),
        _q(rng, hero.name, f"This is the {toy} I wanted!", "shouted"),
        f"{hero.name} was so {rng.choice(['happy', 'excited', 'glad'])}",
        f"{_cap(hero.his)} eyes grew wide",
    )
    st.say(
        f"Then {hero.he} met {friend.intro}",
        f"Just then, {friend.intro} came by",
        f"Soon, {hero.he} met {friend.intro}",
    )
    st.say(
        _q(rng, friend.name, f"Hello, {hero.name}! Can I play too?"),
        _q(rng, friend.name, "What a nice " + toy + "!"),
        _q(rng, friend.name, "Can we be friends?"),
        f"{friend.name} smiled and {friend.sound}",
    )
    st.para()
    prob, fixes = rng.choice(PROBLEMS_OBJECT)
    st.say(
        f"But then, {prob.format(obj=toy)}",
        f"Suddenly, {prob.format(obj=toy)}",
        f"Oh no! {_cap(prob.format(obj=toy))}",
    )
    bad = rng.choice(FEELINGS_BAD)
    st.say(
        f"{hero.name} felt {bad}",
        f"{hero.name} was very {bad}",
        f"{hero.name} began to cry",
        _q(rng, hero.name, f"Oh no! My {toy}!", "cried"),
    )
    st.say(
        _q(rng, friend.name, "Don't worry. I will help you."),
        _q(rng, friend.name, "Let's fix it together!"),
        _q(rng, friend.name, "I have an idea!"),
    )
    parent = rng.choice(PARENTS)[0]
    fix = rng.choice(fixes).format(obj=toy, helper=friend.name, parent=hero.his + " " + parent)
    if fix.startswith("they"):
        st.say(fix, f"Together, {fix}", f"So {fix}")
    else:
        st.say(fix)
    st.para()
    good = rng.choice(FEELINGS_GOOD)
    st.say(
        f"{hero.name} was {good} again",
        f"{hero.name} smiled a big smile",
        f"{hero.name} hugged {friend.name}",
        _q(rng, hero.name, f"Thank you, {friend.name}!"),
    )
    st.say(
        f"They played with the {toy} all day long",
        f"Then they took turns with the {toy} until the sun went down",
        f"From that day on, {hero.name} and {friend.name} were best friends",
        f"They went home together, {good} and tired",
    )


def _arc_lost(st: _Story, hero: _Char, friend: _Char, place: tuple, used: set) -> None:
    rng = st.rng
    toy, _use = rng.choice(TOYS)
    adj = rng.choice(COLORS + SIZES)
    st.say(
        f"{hero.name} had {_a(adj + ' ' + toy)}. {_cap(hero.he)} took it everywhere",
        f"{hero.name} loved {hero.his} {adj} {toy} very much",
        f"{_cap(hero.his)} best toy was {_a(adj + ' ' + toy)}",
    )
    st.para()
    _start_day(st, hero, place)
    st.say(
        f"{_cap(hero.he)} played and played, and then {hero.he} looked for the {toy}. It was gone",
        f"When {hero.he} wanted to go home, the {toy} was not there",
        f"After a while, {hero.name} could not find {hero.his} {toy}",
    )
    bad = rng.choice(FEELINGS_BAD)
    st.say(
        f"{hero.name} felt very {bad}",
        _q(rng, hero.name, f"Where is my {toy}?", "cried"),
        f"{hero.name} sat down and began to cry",
    )
    st.para()
    st.say(f"Then {friend.intro} came by", f"Just then, {hero.he} saw {hero.his} friend {friend.name}")
    st.say(
        _q(rng, friend.name, f"Why are you {bad}, {hero.name}?"),
        _q(rng, friend.name, "What is wrong?"),
    )
    st.say(
        _q(rng, hero.name, f"I lost my {toy}."),
        _q(rng, hero.name, f"I can not find my {adj} {toy}."),
    )
    st.say(
        _q(rng, friend.name, "I will help you look for it."),
        _q(rng, friend.name, "Let's look together!"),
    )
    spots = rng.sample(place[2], 3)
    st.say(
        f"They looked near {spots[0]}. It was not there",
        f"First they looked behind {spots[0]}, but they found nothing",
    )
    st.say(
        f"They looked under {spots[1]}. It was not there either",
        f"Then they looked next to {spots[1]}, but the {toy} was not there",
    )
    finder = rng.random()
    if finder < 0.5:
        st.say(
            f"At last, {friend.name} looked near {spots[2]} and shouted, \"I found it!\"",
            f"Then {friend.name} saw something {adj} near {spots[2]}. It was the {toy}!",
        )
    else:
        animal = rng.choice(ANIMALS)
        st.say(
            f"Then they saw {_a(rng.choice(ANIMAL_ADJS) + ' ' + animal[0])} near {spots[2]}. It had the {toy}!",
            f"Near {spots[2]}, {_a(animal[0])} was playing with the {toy}",
        )
        st.say(
            f"The {animal[0]} {animal[1]} and gave the {toy} back",
            f"The {animal[0]} just wanted to play, so they all played together",
        )
    st.para()
    st.say(
        f"{hero.name} was so {rng.choice(FEELINGS_GOOD)}",
        f"{hero.name} held the {toy} tight",
        _q(rng, hero.name, f"Thank you for helping me, {friend.name}!"),
    )
    st.say(
        f"After that, {hero.name} always kept the {toy} close",
        f"{hero.name} and {friend.name} walked home together",
        f"From then on, {hero.name} was careful with {hero.his} {toy}",
    )


def _arc_friend(st: _Story, hero: _Char, friend: _Char, place: tuple, used: set) -> None:
    rng = st.rng
    st.say(
        f"But {hero.name} did not have any friends. {_cap(hero.he)} felt lonely",
        f"{hero.name} wanted a friend to play with",
        f"{hero.name} was new in town, and {hero.he} did not know anyone",
    )
    st.para()
    _start_day(st, hero, place)
    st.say(
        f"There {hero.he} saw {friend.intro}. {_cap(friend.he)} was playing alone",
        f"{_cap(hero.he)} saw {friend.intro} sitting near {rng.choice(place[2])}",
        f"Near {rng.choice(place[2])}, {hero.he} saw {friend.intro}",
    )
    st.say(
        f"{hero.name} was too shy to say hello",
        f"{hero.name} wanted to say hello, but {hero.he} felt nervous",
        f"{hero.name} took a deep breath",
    )
    game = rng.choice(GAMES)
    st.say(
        _q(rng, hero.name, f"Hi! My name is {hero.name}. Do you want to play {game}?"),
        _q(rng, hero.name, f"Hello! Can I play with you?"),
        _q(rng, hero.name, f"Do you want to play {game} with me?"),
    )
    st.say(
        _q(rng, friend.name, f"Yes! I am {friend.name}. Let's play!"),
        f"{friend.name} smiled. \"Yes, please!\"",
        f"{friend.name} {friend.sound} happily and nodded",
    )
    st.para()
    st.say(
        f"They played {game} all afternoon",
        f"They played {game} until the sun went down",
        f"They laughed and played {game} together",
    )
    if rng.random() < 0.6:
        prob, fixes = rng.choice(PROBLEMS_WORLD)
        st.say(f"Then {prob}", f"Suddenly, {prob}")
        st.say(rng.choice(fixes).format(helper=friend.name))
    st.say(
        f"{hero.name} was not lonely anymore",
        f"{hero.name} felt {rng.choice(FEELINGS_GOOD)}",
        f"Now {hero.name} had a new friend",
    )
    st.say(
        f"From that day on, {hero.name} and {friend.name} played together every day",
        f"They became the best of friends",
        _q(rng, friend.name, "See you tomorrow, " + hero.name + "!"),
    )


def _arc_skill(st: _Story, hero: _Char, friend: _Char, place: tuple, used: set) -> None:
    rng = st.rng
    skill, where, fail, success = rng.choice(SKILLS)
    st.say(
        f"{hero.name} wanted to learn to {skill}",
        f"{hero.name} wished {hero.he} could {skill}",
        f"More than anything, {hero.name} wanted to {skill}",
    )
    st.say(
        f"All {hero.his} friends could {skill}, but {hero.name} could not",
        f"{_cap(hero.he)} watched the others {skill} {where}",
        f"It looked like so much fun",
    )
    st.para()
    when = rng.choice(WEATHER_START)
    st.say(f"{when}, {hero.name} tried to {skill} {where}")
    st.say(f"But {hero.he} {fail}", f"But it was hard, and {hero.he} {fail}")
    bad = rng.choice(FEELINGS_BAD)
    st.say(
        f"{hero.name} felt {bad}. {_cap(hero.he)} wanted to give up",
        _q(rng, hero.name, "I can't do it!", "cried"),
        _q(rng, hero.name, "I will never learn!"),
    )
    parent, ppron = rng.choice(PARENTS)
    helper_name = rng.choice([friend.name, f"{hero.his} {parent}"])
    st.say(
        f"Then {helper_name} came and sat next to {hero.him}",
        f"{_cap(helper_name)} saw {hero.name} and came over",
    )
    st.say(
        _q(rng, helper_name, "Don't give up. Try again, slowly."),
        _q(rng, helper_name, "Everyone finds it hard at first. You can do it!"),
        _q(rng, helper_name, "I will help you. Let's practice together."),
    )
    st.para()
    st.say(
        f"So {hero.name} tried again. And again. And again",
        f"{hero.name} practiced every day",
        f"{hero.name} took a deep breath and tried one more time",
    )
    st.say(f"This time, {hero.he} {success}!", f"At last, {hero.he} {success}!")
    st.say(
        _q(rng, hero.name, "I did it!", "shouted"),
        f"{hero.name} felt so {rng.choice(['proud', 'happy', 'excited'])}",
    )
    st.say(
        f"{_cap(helper_name)} clapped and cheered",
        f"{hero.name} gave {helper_name} a big hug",
        _q(rng, hero.name, "Thank you for helping me!"),
    )


def _arc_share(st: _Story, hero: _Char, friend: _Char, place: tuple, used: set) -> None:
    rng = st.rng
    food = rng.choice(FOODS)
    parent, ppron = rng.choice(PARENTS)
    st.say(
        f"One day, {hero.his} {parent} gave {hero.him} a big {food}",
        f"One day, {hero.name} found a big {food} on the table",
        f"{hero.name} had a big {food}. It looked very yummy",
    )
    st.say(f"{hero.name} took the {food} {place[1]} {place[0]}")
    st.say(
        f"There {hero.he} met {hero.his} friend {friend.name}",
        f"Soon {friend.intro} came by",
    )
    st.say(
        _q(rng, friend.name, f"That {food} looks good. Can I have some?"),
        _q(rng, friend.name, f"I am so hungry. Can you share your {food}?"),
    )
    st.para()
    st.say(
        _q(rng, hero.name, f"No! It is my {food}."),
        f"{hero.name} did not want to share",
        f"{hero.name} held the {food} close and said no",
    )
    st.say(
        f"{friend.name} looked sad and walked away",
        f"{friend.name} felt {rng.choice(FEELINGS_BAD)}",
    )
    st.say(
        f"Then {hero.name} felt bad too",
        f"But soon, the {food} did not taste so good anymore",
        f"{hero.name} thought about {hero.his} friend",
    )
    st.para()
    st.say(
        f"{hero.name} ran after {friend.name}",
        f"{hero.name} went to find {friend.name}",
    )
    st.say(
        _q(rng, hero.name, f"I am sorry, {friend.name}. Let's share the {food}."),
        _q(rng, hero.name, f"Here, you can have half of my {food}."),
    )
    st.say(
        f"{friend.name} smiled. They sat down and ate the {food} together",
        f"They shared the {food}, and it was the best {food} ever",
    )
    st.say(
        f"{hero.name} learned that sharing made {hero.him} happy",
        f"Sharing made them both feel {rng.choice(FEELINGS_GOOD)}",
    )


def _arc_rescue(st: _Story, hero: _Char, friend: _Char, place: tuple, used: set) -> None:
    rng = st.rng
    _start_day(st, hero, place)
    st.say(
        f"Suddenly, {hero.he} heard {rng.choice(SOUNDS)}",
        f"Near {rng.choice(place[2])}, {hero.he} heard {rng.choice(SOUNDS)}",
    )
    animal = rng.choice([a for a in ANIMALS if a[0] != hero.kind])
    trouble = rng.choice([
        ("was stuck in a tree", "helped it climb down", "climbed up and held it gently"),
        ("had a hurt leg", "put a soft leaf on its leg", "carried it home and gave it water"),
        ("was lost and could not find its mom", "helped it look for its mom", "called out until its mom came running"),
        ("was caught in a net", "pulled the net open", "untied the net very slowly"),
        ("was very hungry", "gave it some food", "shared a snack with it"),
        ("was cold and wet", "wrapped it in a warm scarf", "took it to a sunny spot"),
    ])
    st.say(
        f"It was {_a(rng.choice(ANIMAL_ADJS) + ' ' + animal[0])}. The {animal[0]} {trouble[0]}",
        f"{_cap(hero.he)} saw {_a(animal[0])}. It {trouble[0]}",
    )
    st.say(
        _q(rng, hero.name, f"Poor little {animal[0]}! I will help you."),
        f"{hero.name} wanted to help",
        f"{hero.name} felt sorry for the {animal[0]}",
    )
    st.para()
    if rng.random() < 0.5:
        st.say(f"{_cap(hero.he)} called {hero.his} friend {friend.name} to help")
        st.say(f"Together they {rng.choice(trouble[1:])}")
    else:
        st.say(f"{hero.name} {rng.choice(trouble[1:])}")
    st.say(
        f"The {animal[0]} {animal[1]} happily",
        f"The {animal[0]} was safe now",
        f"The {animal[0]} {animal[1]} as if to say thank you",
    )
    st.say(
        f"After that, the {animal[0]} came to visit {hero.name} every day",
        f"{hero.name} felt warm and {rng.choice(FEELINGS_GOOD)} inside",
        f"{hero.name} went home and told {hero.his} {rng.choice(PARENTS)[0]} all about it",
    )


def _arc_adventure(st: _Story, hero: _Char, friend: _Char, place: tuple, used: set) -> None:
    rng = st.rng
    st.say(
        f"{hero.name} had a good friend, {friend.intro}",
        f"{_cap(hero.his)} best friend was {friend.intro}",
    )
    st.say(
        f"{hero.name} and {friend.name} wanted to go on an adventure",
        f"{hero.name} and {friend.name} liked to explore",
        "They liked to explore new places",
    )
    st.say(
        _q(rng, friend.name, f"Let's go to {place[0]}!"),
        _q(rng, hero.name, f"Do you want to go to {place[0]} with me?"),
    )
    st.say(
        f"So they packed {rng.choice(SNACKS)} and went {place[1]} {place[0]}",
        f"So they went {place[1]} {place[0]} together",
    )
    st.para()
    st.say(
        "They saw {} and {}".format(*rng.sample(place[2], 2)),
        f"At {place[0]}, they found {rng.choice(place[2])}",
    )
    st.say(
        f"It was so much fun",
        f"They played and laughed",
        f"They ate their snack near {rng.choice(place[2])}",
    )
    prob, fixes = rng.choice(PROBLEMS_WORLD)
    st.say(f"But then {prob}", f"Suddenly, {prob}", f"Oh no! {_cap(prob)}")
    st.say(
        f"{friend.name} felt {rng.choice(FEELINGS_BAD)}",
        _q(rng, friend.name, "What do we do now?"),
        f"{hero.name} was {rng.choice(FEELINGS_BAD)} too, but {hero.he} tried to be brave",
    )
    if rng.random() < 0.4:
        hdesc, hname, hpron = rng.choice(WISE_HELPERS)
        st.say(f"Then they met {hdesc}", f"Just then, {hdesc} came by")
        st.say(
            _q(rng, hname, "Don't be afraid. I will help you."),
            f"{_cap(hname)} smiled kindly",
        )
        st.say(_cap(rng.choice(fixes).format(helper=hname)))
    else:
        st.say(
            _q(rng, hero.name, "I know what to do!"),
            f"{hero.name} had an idea",
        )
        st.say(rng.choice(fixes).format(helper=hero.name))
    st.para()
    st.say(
        f"When they got home, they were tired but {rng.choice(FEELINGS_GOOD)}",
        f"It was the best adventure ever",
        f"They could not wait for their next adventure",
    )


def _arc_party(st: _Story, hero: _Char, friend: _Char, place: tuple, used: set) -> None:
    rng = st.rng
    event = rng.choice(["birthday", "party", "picnic", "tea party", "big day"])
    food = rng.choice(["cake", "chocolate cake", "pie", "cupcake", "pizza", "fruit salad",
                       "strawberry cake", "lemon pie", "apple pie", "plate of cookies"])
    st.say(
        f"Tomorrow was {hero.name}'s {event}",
        f"It was almost time for {hero.name}'s {event}",
        f"{hero.name} was getting ready for a {event}",
    )
    st.say(
        f"{_cap(hero.he)} was so excited that {hero.he} could not sleep",
        f"{_cap(hero.he)} wanted everything to be perfect",
        f"{_cap(hero.he)} made a list of friends to invite",
    )
    parent, ppron = rng.choice(PARENTS)
    st.say(
        f"{_cap(hero.his)} {parent} made {_a(food)} for the {event}",
        f"{hero.name} and {hero.his} {parent} hung {rng.choice(COLORS)} balloons on the wall",
        f"{hero.name} helped {hero.his} {parent} make {_a('big ' + food)}",
    )
    st.para()
    st.say(
        f"When the day came, {hero.his} friend {friend.name} came first",
        f"In the morning, {friend.intro} knocked on the door",
    )
    gift_toy, _use = rng.choice(TOYS)
    st.say(
        f"{friend.name} brought a present. It was {_a(rng.choice(SIZES) + ' ' + gift_toy)}",
        _q(rng, friend.name, f"Happy {event}, {hero.name}! This is for you."),
    )
    if rng.random() < 0.6:
        prob = rng.choice([
            (f"the {food} fell on the floor", f"{hero.his} {parent} made a new one, even better than before"),
            ("the balloons flew away", "they watched them float up to the clouds and laughed"),
            ("it started to rain", "they moved the party inside and played games"),
            ("the music stopped", f"{friend.name} sang a song instead, and everyone danced"),
        ])
        st.say(f"But then {prob[0]}", f"Oh no! {_cap(prob[0])}")
        st.say(f"{hero.name} felt {rng.choice(FEELINGS_BAD)} for a moment")
        st.say(f"Then {prob[1]}", _cap(prob[1]))
    st.para()
    st.say(
        f"They played {rng.choice(GAMES)} and ate {_a(rng.choice(FOODS))}",
        f"Everyone laughed, sang and danced",
        f"They ate the {food} and played games all afternoon",
    )
    st.say(
        f"It was the best {event} ever",
        _q(rng, hero.name, f"This was the best {event} ever!"),
        f"{hero.name} thanked everyone for coming",
    )


def _arc_garden(st: _Story, hero: _Char, friend: _Char, place: tuple, used: set) -> None:
    rng = st.rng
    plant = rng.choice(["sunflower", "tomato", "pumpkin", "carrot", "rose", "bean", "strawberry",
                        "apple tree", "tulip", "daisy"])
    st.say(
        f"One day, {hero.name} found a tiny seed",
        f"{hero.name}'s {rng.choice(PARENTS)[0]} gave {hero.him} a small seed",
        f"{hero.name} got a little bag of seeds",
    )
    st.say(
        _q(rng, hero.name, f"I will plant it and grow {_a(plant)}!"),
        f"{_cap(hero.he)} wanted to grow a big {plant}",
    )
    st.say(
        f"{_cap(hero.he)} dug a small hole in the garden and put the seed inside",
        f"{_cap(hero.he)} planted the seed in a pot by the window",
    )
    st.para()
    st.say(
        f"Every day, {hero.name} gave the seed some water",
        f"Every morning, {hero.he} watered the seed and waited",
    )
    st.say(
        "But nothing happened",
        "Days went by, but nothing grew",
    )
    st.say(
        f"{hero.name} felt {rng.choice(['impatient', 'sad', 'worried'])}",
        _q(rng, hero.name, "Why is it not growing?"),
    )
    st.say(
        f"{_cap(hero.his)} friend {friend.name} came to look",
        f"Then {friend.intro} came by",
    )
    st.say(
        _q(rng, friend.name, "Be patient. Seeds need time, water and sun."),
        _q(rng, friend.name, "Plants grow slowly. Just wait and see."),
    )
    st.para()
    st.say(
        "Then one morning, a little green sprout came out of the soil",
        "At last, a tiny green leaf peeked out",
    )
    st.say(
        f"It grew taller and taller. Soon it was a beautiful {plant}",
        f"Week after week it grew, until there was a big {plant}",
    )
    st.say(
        f"{hero.name} was very {rng.choice(FEELINGS_GOOD)}",
        f"{hero.name} showed the {plant} to everyone",
        f"{hero.name} shared the {plant} with {friend.name}",
    )


def _arc_dark(st: _Story, hero: _Char, friend: _Char, place: tuple, used: set) -> None:
    rng = st.rng
    parent, ppron = rng.choice(PARENTS)
    st.say(
        f"{hero.name} was afraid of the dark",
        f"Every night, {hero.name} was scared when the lights went out",
    )
    st.say(
        f"{_cap(hero.he)} thought there was a monster under the bed",
        f"The shadows on the wall looked like big, scary shapes",
        f"{_cap(hero.he)} heard funny noises at night",
    )
    st.para()
    st.say(
        f"One night, {hero.he} called for {hero.his} {parent}",
        f"One night, {hero.name} could not sleep at all",
    )
    st.say(_q(rng, hero.name, f"{_cap(parent)}, I am scared!", "cried"))
    st.say(
        f"{_cap(hero.his)} {parent} came in and turned on a small lamp",
        f"{_cap(hero.his)} {parent} sat on the bed and held {hero.his} hand",
    )
    st.say(
        _q(rng, f"{hero.his} {parent}",
           "Let's look together. There is nothing to be afraid of."),
    )
    st.say(
        "They looked under the bed. There was only an old sock and a teddy bear",
        "The scary shape was just a coat on a chair",
        "The funny noise was just the wind in the trees",
    )
    st.para()
    st.say(
        f"{hero.name} laughed",
        f"{hero.name} felt much better",
    )
    st.say(
        f"After that, {hero.he} was not afraid of the dark anymore",
        f"{_cap(hero.he)} hugged {hero.his} teddy bear and fell asleep",
        f"That night, {hero.he} slept well and had sweet dreams",
    )


ARCS = [
    ("quest", _arc_quest), ("lost", _arc_lost), ("friend", _arc_friend), ("skill", _arc_skill),
    ("share", _arc_share), ("rescue", _arc_rescue), ("adventure", _arc_adventure),
    ("party", _arc_party), ("garden", _arc_garden), ("dark", _arc_dark),
]


def _ending(st: _Story, hero: _Char, arc_name: str) -> None:
    rng = st.rng
    st.hero = None  # no filler sentences in the closing lines
    r = rng.random()
    moral = rng.choice(ARC_MORALS[arc_name]) if rng.random() < 0.85 else rng.choice(MORALS)
    if r < 0.45:
        st.say(
            f"{hero.name} learned that {moral}",
            f"That day, {hero.name} learned that {moral}",
            f"And so {hero.name} learned that {moral}",
        )
    elif r < 0.6:
        st.say(f"The lesson is that {moral}")
    close = rng.random()
    if close < 0.45:
        st.say("The end.")
    elif close < 0.65:
        st.say("And they lived happily ever after.")
    elif close < 0.8:
        st.say(f"{hero.name} went to bed with a smile")
    elif close < 0.9:
        st.say("And that is the end of the story.")


def generate_story(rng: random.Random) -> str:
    """Generate one story using (and advancing) ``rng``."""
    used: set = set()
    hero = _make_char(rng, used)
    friend = _make_char(rng, used)
    place = rng.choice(PLACES)
    st = _Story(rng)
    arc_name, arc = rng.choice(ARCS)
    st.hero, st.friend = hero, friend
    _opening(st, hero, place, lonely=(arc_name == "friend"))
    arc(st, hero, friend, place, used)
    _ending(st, hero, arc_name)
    return st.text()


def generate(n_stories: int, seed: int) -> list[str]:
    """Return ``n_stories`` deterministic stories for ``seed``."""
    rng = random.Random(seed)
    return [generate_story(rng) for _ in range(n_stories)]


if __name__ == "__main__":  # pragma: no cover - manual inspection
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    s = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    print("\n\n---\n\n".join(generate(n, s)))
