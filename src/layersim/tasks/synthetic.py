"""The offline synthetic tasks: template generators with known answers (the project's controls).

Four GLUE-like tasks (sentiment, agreement, entailment, paraphrase) generated deterministically
from a seed, with exactly balanced labels and no sentence shared between splits. Their registry
entries (fields, labels, metrics) are in :mod:`layersim.tasks`, whose :func:`~layersim.tasks.load`
calls :func:`generate_synthetic`; their measured difficulty is in
``benchmarks/results/synthetic_difficulty_cpu.txt``.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence

import datasets

__all__ = ["SYNTHETIC_SIZES", "generate_synthetic"]

# Examples per split of every synthetic task (labels exactly balanced in each split).
SYNTHETIC_SIZES: dict[str, int] = {"train": 4000, "validation": 1000, "test": 1000}


def _registry_entry(name: str):
    """The task's registry entry (imported late: layersim.tasks imports this module)."""
    from layersim.tasks import get_task

    return get_task(name)


# Templates and word lists written for this project. Each generator draws one candidate example
# from a `random.Random`; `_build_splits` fills train / validation / test with exactly balanced
# labels, no duplicate examples, and no sentence of a later split seen in an earlier one.


def _pick(rng: random.Random, items: Sequence):
    return items[rng.randrange(len(items))]


# ---- synth_sentiment ------------------------------------------------------------------------

_FILM_SUBJECTS = (
    "the movie", "the film", "this documentary", "the sequel", "the soundtrack", "the plot",
    "the acting", "the script", "the ending", "the cinematography", "the dialogue", "the cast",
    "the pacing", "the finale", "the opening scene", "this thriller", "the comedy",
    "the animation", "the lead performance", "the screenplay", "the score", "the remake",
    "the pilot episode", "the second act", "the premise", "the direction", "the editing",
    "this musical", "the western", "the horror film", "the costume design", "the villain",
)  # fmt: skip
_POSITIVE = (
    "good", "great", "wonderful", "brilliant", "charming", "delightful", "moving", "clever",
    "gripping", "superb", "excellent", "enjoyable", "memorable", "stunning", "funny", "heartfelt",
    "inventive", "beautiful", "compelling", "fresh", "engaging", "touching", "thrilling", "witty",
    "polished", "impressive", "satisfying", "lovely", "smart", "powerful",
)  # fmt: skip
_NEGATIVE = (
    "bad", "dull", "boring", "awful", "tedious", "clumsy", "bland", "forgettable", "messy",
    "painful", "lifeless", "predictable", "shallow", "tiresome", "confusing", "dreadful", "weak",
    "sloppy", "flat", "pointless", "stale", "annoying", "cliched", "lazy", "hollow",
    "disappointing", "mediocre", "silly", "clunky", "grating",
)  # fmt: skip
_INTENSIFIERS = (
    "very", "really", "truly", "remarkably", "incredibly", "quite", "extremely", "thoroughly",
    "genuinely", "deeply", "rather", "surprisingly", "downright", "utterly", "fairly", "so",
)  # fmt: skip
# (template, negates): {s} subject, {a} adjective phrase.
_SENTIMENT_FRAMES = (
    ("{s} was {a}", False), ("{s} is {a}", False), ("{s} seemed {a}", False),
    ("{s} felt {a}", False), ("{s} turned out to be {a}", False), ("{s} proved {a}", False),
    ("{s} remains {a}", False), ("i found {s} {a}", False), ("critics called {s} {a}", False),
    ("everyone agreed that {s} was {a}", False), ("it is fair to say {s} is {a}", False),
    ("my friends thought {s} was {a}", False), ("{s} is always {a}", False),
    ("{s} was not {a}", True), ("{s} is not {a}", True), ("{s} was never {a}", True),
    ("{s} is hardly {a}", True), ("{s} was far from {a}", True), ("{s} wasn't {a}", True),
    ("{s} isn't {a}", True), ("{s} never seemed {a}", True), ("{s} did not feel {a}", True),
    ("i would not call {s} {a}", True), ("nobody found {s} {a}", True),
    ("no one could say {s} was {a}", True), ("it would be wrong to call {s} {a}", True),
    ("{s} is anything but {a}", True), ("i did not find {s} {a}", True),
)  # fmt: skip
# (template, which clause carries the label): the main clause of a contrast.
_CONTRASTS = (
    ("{x}, but {y}", "y"), ("{x}, yet {y}", "y"), ("although {x}, {y}", "y"),
    ("{y}, although {x}", "y"), ("{y}, even though {x}", "y"), ("while {x}, {y}", "y"),
    ("{x}; however, {y}", "y"), ("{y}, despite the fact that {x}", "y"),
)  # fmt: skip


def _sentiment_clause(rng: random.Random, subject: str, sentiment: int) -> str:
    """A clause about `subject` whose overall sentiment is `sentiment` (+1 / -1)."""
    template, negates = _pick(rng, _SENTIMENT_FRAMES)
    polarity = -sentiment if negates else sentiment
    adjective = _pick(rng, _POSITIVE if polarity > 0 else _NEGATIVE)
    if rng.random() < 0.5:
        adjective = f"{_pick(rng, _INTENSIFIERS)} {adjective}"
    return template.format(s=subject, a=adjective)


def _synth_sentiment(rng: random.Random) -> dict:
    label = rng.randrange(2)
    sentiment = 1 if label == 1 else -1
    subject = _pick(rng, _FILM_SUBJECTS)
    draw = rng.random()
    if draw < 0.45:
        sentence = _sentiment_clause(rng, subject, sentiment)
    elif draw < 0.55:  # two clauses agreeing
        other = _pick(rng, _FILM_SUBJECTS)
        first = _sentiment_clause(rng, subject, sentiment)
        sentence = f"{first}, and {_sentiment_clause(rng, other, sentiment)}"
    else:  # contrast: the main clause decides, the concessive one says the opposite
        other = _pick(rng, _FILM_SUBJECTS)
        template, _ = _pick(rng, _CONTRASTS)
        main = _sentiment_clause(rng, subject, sentiment)
        conceded = _sentiment_clause(rng, other, -sentiment)
        sentence = template.format(x=conceded, y=main)
    return {"sentence": sentence + ".", "label": label}


# ---- synth_agreement ------------------------------------------------------------------------

# (singular, plural, animate)
_AGR_NOUNS = (
    ("key", "keys", False), ("cabinet", "cabinets", False), ("painting", "paintings", False),
    ("letter", "letters", False), ("box", "boxes", False), ("bottle", "bottles", False),
    ("report", "reports", False), ("label", "labels", False), ("knife", "knives", False),
    ("shelf", "shelves", False), ("tooth", "teeth", False), ("leaf", "leaves", False),
    ("city", "cities", False), ("church", "churches", False), ("bus", "buses", False),
    ("photo", "photos", False), ("chair", "chairs", False), ("window", "windows", False),
    ("guitar", "guitars", False), ("poem", "poems", False), ("lamp", "lamps", False),
    ("author", "authors", True), ("pilot", "pilots", True), ("child", "children", True),
    ("woman", "women", True), ("man", "men", True), ("mouse", "mice", True),
    ("goose", "geese", True), ("teacher", "teachers", True), ("senator", "senators", True),
    ("doctor", "doctors", True), ("dog", "dogs", True), ("farmer", "farmers", True),
    ("student", "students", True), ("lawyer", "lawyers", True), ("manager", "managers", True),
    ("dancer", "dancers", True), ("nurse", "nurses", True), ("wolf", "wolves", True),
    ("person", "people", True), ("lady", "ladies", True), ("baby", "babies", True),
    ("engineer", "engineers", True), ("actor", "actors", True), ("singer", "singers", True),
    ("cook", "cooks", True), ("guard", "guards", True), ("neighbor", "neighbors", True),
    ("soldier", "soldiers", True), ("architect", "architects", True),
)  # fmt: skip
# Main-clause predicates, (singular, plural): auxiliaries and copulas carry the agreement.
_AGR_PREDICATES = (
    ("is on the table", "are on the table"), ("is in the hallway", "are in the hallway"),
    ("was near the door", "were near the door"), ("is missing", "are missing"),
    ("was quite old", "were quite old"), ("is upstairs", "are upstairs"),
    ("has disappeared", "have disappeared"), ("was in the photo", "were in the photo"),
    ("is still outside", "are still outside"), ("was on the list", "were on the list"),
    ("has been moved", "have been moved"), ("is in the other room", "are in the other room"),
    ("was covered in dust", "were covered in dust"), ("does not fit", "do not fit"),
    ("is here", "are here"), ("was broken", "were broken"), ("has arrived", "have arrived"),
    ("is ready", "are ready"), ("was late", "were late"), ("does not work", "do not work"),
    ("has changed", "have changed"), ("is expensive", "are expensive"),
    ("was in the garden", "were in the garden"), ("does not belong here", "do not belong here"),
)  # fmt: skip
# Determiners (singular, plural) of the head noun: number is marked on the determiner too.
_AGR_DETERMINERS = (
    ("the", "the"), ("this", "these"), ("that", "those"), ("my", "my"), ("a", "some"),
    ("our", "our"), ("her", "her"),
)  # fmt: skip
# Transitive verbs of object relative clauses: (3rd singular, plural).
_AGR_TRANSITIVE = (
    ("likes", "like"), ("admires", "admire"), ("trusts", "trust"), ("visits", "visit"),
    ("remembers", "remember"), ("hates", "hate"), ("helps", "help"), ("watches", "watch"),
    ("knows", "know"), ("avoids", "avoid"), ("praises", "praise"), ("follows", "follow"),
)  # fmt: skip
_AGR_PREPOSITIONS = (
    "of", "near", "behind", "next to", "beside", "with", "from", "under", "above", "for",
    "in front of", "across from", "beyond", "to",
)  # fmt: skip


def _agreement_head(rng: random.Random, noun: tuple, plural: bool) -> str:
    singular, plural_form = _pick(rng, _AGR_DETERMINERS)
    if singular == "a" and noun[0][0] in "aeiou":
        singular = "an"
    return f"{plural_form if plural else singular} {noun[1] if plural else noun[0]}"


def _synth_agreement(rng: random.Random) -> dict:
    label = rng.randrange(2)  # 1 acceptable: the main verb agrees with the head noun
    head = _pick(rng, _AGR_NOUNS)
    head_plural = rng.random() < 0.5
    # Attractors mostly disagree with the head in number: agreement with the nearest noun fails.
    attractor = _pick(rng, _AGR_NOUNS)
    attractor_plural = (not head_plural) if rng.random() < 0.75 else head_plural
    attractor_phrase = f"the {attractor[1] if attractor_plural else attractor[0]}"
    subject = _agreement_head(rng, head, head_plural)
    structure = rng.random()
    if structure < 0.3:
        pass  # no attractor: the verb follows the head noun
    elif structure < 0.8 or not attractor[2]:
        subject += f" {_pick(rng, _AGR_PREPOSITIONS)} {attractor_phrase}"
    else:  # object relative clause whose own verb agrees with the attractor
        verb = _pick(rng, _AGR_TRANSITIVE)[1 if attractor_plural else 0]
        subject += f" that {attractor_phrase} {verb}"
    predicate = _pick(rng, _AGR_PREDICATES)
    verb_plural = head_plural if label == 1 else not head_plural
    return {"sentence": f"{subject} {predicate[1 if verb_plural else 0]}.", "label": label}


# ---- synth_entailment -----------------------------------------------------------------------

# Hypernym trees (child -> parent) for nouns and intransitive verb phrases.
_NOUN_TREE = {
    "animal": {
        "dog": ("poodle", "terrier", "beagle", "bulldog"),
        "cat": ("kitten", "tabby", "siamese"),
        "bird": ("sparrow", "parrot", "owl", "pigeon", "robin"),
        "horse": ("pony", "stallion", "mare"),
        "rodent": ("squirrel", "hamster", "rat"),
    },
    "person": {
        "musician": ("violinist", "drummer", "pianist", "guitarist"),
        "athlete": ("runner", "swimmer", "boxer", "cyclist"),
        "doctor": ("surgeon", "dentist", "pediatrician"),
        "worker": ("farmer", "builder", "miner", "welder"),
        "child": ("toddler", "schoolboy", "schoolgirl"),
    },
}
_VERB_TREE = {
    "moved": {
        "ran": ("sprinted", "jogged", "raced"),
        "walked": ("strolled", "marched", "wandered", "limped", "tiptoed"),
        "jumped": ("leaped", "hopped", "vaulted"),
    },
    "made noise": {
        "shouted": ("yelled", "screamed", "hollered"),
        "laughed": ("giggled", "chuckled", "cackled"),
        "cried": ("sobbed", "wept", "whimpered"),
    },
    "rested": {
        "slept": ("napped", "dozed", "snoozed"),
        "sat": ("perched", "slouched", "squatted"),
    },
}
_SCENES = (
    "in the park", "near the river", "this morning", "after lunch", "at the fair",
    "in the garden", "during the storm", "last night", "on the beach", "at the station",
    "behind the barn", "in the village", "before sunrise", "at noon", "in the yard",
    "on the hill", "by the lake", "at the market", "in the forest", "on sunday",
    "outside the school", "at the party", "in the rain", "near the bridge",
)  # fmt: skip
# Surface forms of the three quantifiers.
_QUANTIFIERS = {"all": ("every", "each"), "some": ("some", "a", "at least one"), "none": ("no",)}


def _parents(tree: dict) -> dict[str, str | None]:
    parent: dict[str, str | None] = {}
    for root, children in tree.items():
        parent[root] = None
        for child, leaves in children.items():
            parent[child] = root
            for leaf in leaves:
                parent[leaf] = child
    return parent


_NOUN_PARENT = _parents(_NOUN_TREE)
_VERB_PARENT = _parents(_VERB_TREE)


def _ancestors(word: str, parent: dict[str, str | None]) -> list[str]:
    out = []
    while parent[word] is not None:
        word = parent[word]
        out.append(word)
    return out


def _subsumed(narrow: str, broad: str, parent: dict[str, str | None]) -> bool:
    """narrow ⊆ broad: broad is narrow or one of its hypernyms."""
    return narrow == broad or broad in _ancestors(narrow, parent)


def _related(rng: random.Random, word: str, parent: dict[str, str | None]) -> str:
    """Same word (25%), a hypernym (30%), a hyponym (30%), or else an unrelated word."""
    ancestors = _ancestors(word, parent)
    descendants = [w for w in parent if word in _ancestors(w, parent)]
    others = [w for w in parent if w != word and w not in ancestors and w not in descendants]
    draw = rng.random()
    if draw < 0.25:
        return word
    if draw < 0.55 and ancestors:
        return _pick(rng, ancestors)
    if draw < 0.85 and descendants:
        return _pick(rng, descendants)
    return _pick(rng, others)


def _entailed(q1: str, n1: str, v1: str, q2: str, n2: str, v2: str) -> bool:
    """Does "Q1 N1 V1" entail "Q2 N2 V2"? Monotonicity with existential import for "every"."""
    noun_down = _subsumed(n2, n1, _NOUN_PARENT)  # N2 ⊆ N1
    noun_up = _subsumed(n1, n2, _NOUN_PARENT)  # N1 ⊆ N2
    verb_up = _subsumed(v1, v2, _VERB_PARENT)  # V1 ⊆ V2
    verb_down = _subsumed(v2, v1, _VERB_PARENT)  # V2 ⊆ V1
    if q1 == "all" and q2 == "all":
        return noun_down and verb_up  # every: ↓ restrictor, ↑ scope
    if q1 == "all" and q2 == "some":
        return noun_up and verb_up  # every N V ⇒ some N V (N is not empty)
    if q1 == "some" and q2 == "some":
        return noun_up and verb_up  # some: ↑ ↑
    if q1 == "none" and q2 == "none":
        return noun_down and verb_down  # no: ↓ ↓
    return False


def _quantified(rng: random.Random, quantifier: str, noun: str, verb: str, scene: str) -> str:
    return f"{_pick(rng, _QUANTIFIERS[quantifier])} {noun} {verb} {scene}."


def _synth_entailment(rng: random.Random) -> dict:
    q1 = _pick(rng, tuple(_QUANTIFIERS))
    q2 = q1 if rng.random() < 0.7 else _pick(rng, tuple(_QUANTIFIERS))
    n1 = _pick(rng, tuple(_NOUN_PARENT))
    v1 = _pick(rng, tuple(_VERB_PARENT))
    n2 = _related(rng, n1, _NOUN_PARENT)
    v2 = _related(rng, v1, _VERB_PARENT)
    scene = _pick(rng, _SCENES)
    label = 0 if _entailed(q1, n1, v1, q2, n2, v2) else 1  # 0 entailment, 1 not_entailment
    return {
        "premise": _quantified(rng, q1, n1, v1, scene),
        "hypothesis": _quantified(rng, q2, n2, v2, scene),
        "label": label,
    }


# ---- synth_paraphrase -----------------------------------------------------------------------

# Participants: single-token first names (in the uncased WordPiece vocabulary) and roles. Every
# event has one of each, so who acted is visible in each sentence from local cues (does it start
# with a name or a role, is it passive), but only their combination across the pair decides.
_NAMES = (
    "anna", "omar", "lucia", "maria", "david", "tom", "sofia", "ahmed", "elena", "fatima",
    "lucas", "mei", "daniel", "chloe", "ivan", "grace", "pedro", "nadia", "samuel", "leo",
    "felix", "hannah", "oliver", "james", "john", "mary", "peter", "paul", "sarah", "emma",
    "jack", "lucy", "kate", "mike", "lisa", "mark", "susan", "ben", "alice", "henry", "laura",
    "frank", "rosa", "victor", "irene", "carlos", "nina", "hugo", "ruth", "adam", "eva", "max",
    "julia", "sam", "diana",
)  # fmt: skip
_ROLES = (
    "the chef", "the mayor", "the coach", "the nurse", "the pilot", "the lawyer", "the teacher",
    "the senator", "the landlord", "the captain", "the judge", "the referee", "the journalist",
    "the manager", "the doctor", "the painter", "the banker", "the sheriff", "the principal",
    "the poet", "the detective", "the tourist", "the director", "the baker", "the farmer",
)  # fmt: skip
# Synonym groups of (past tense, past participle); verbs are not symmetric (no "met", "married").
_ACTION_GROUPS = (
    (("praised", "praised"), ("commended", "commended"), ("applauded", "applauded")),
    (("called", "called"), ("phoned", "phoned")),
    (("helped", "helped"), ("assisted", "assisted"), ("aided", "aided")),
    (("warned", "warned"), ("cautioned", "cautioned")),
    (("hired", "hired"), ("employed", "employed")),
    (("followed", "followed"), ("tailed", "tailed")),
    (("ignored", "ignored"), ("disregarded", "disregarded")),
    (("greeted", "greeted"), ("welcomed", "welcomed")),
    (("defended", "defended"), ("protected", "protected")),
    (("criticized", "criticized"), ("faulted", "faulted")),
    (("trained", "trained"), ("coached", "coached")),
    (("chose", "chosen"), ("picked", "picked"), ("selected", "selected")),
    (("saw", "seen"), ("spotted", "spotted"), ("noticed", "noticed")),
    (("hit", "hit"), ("struck", "struck")),
    (("taught", "taught"), ("tutored", "tutored")),
    (("rescued", "rescued"), ("saved", "saved")),
    (("pushed", "pushed"), ("shoved", "shoved")),
    (("surprised", "surprised"), ("startled", "startled")),
    (("thanked", "thanked"),), (("visited", "visited"),), (("blamed", "blamed"),),
    (("invited", "invited"),), (("interviewed", "interviewed"),), (("admired", "admired"),),
    (("paid", "paid"),), (("forgave", "forgiven"),), (("accused", "accused"),),
    (("photographed", "photographed"),), (("recognized", "recognized"),),
    (("challenged", "challenged"),), (("interrupted", "interrupted"),),
)  # fmt: skip
_WHEN = (
    "", "yesterday", "on monday", "last week", "this morning", "after the game", "at the party",
    "in the lobby", "during the meeting", "before dinner", "at the airport", "twice",
    "on friday evening", "after the concert", "at the office",
)  # fmt: skip


def _event(agent: str, verb: tuple[str, str], patient: str, when: str, passive: bool) -> str:
    """One sentence for the event, in the active or the passive voice."""
    core = f"{patient} was {verb[1]} by {agent}" if passive else f"{agent} {verb[0]} {patient}"
    return f"{core} {when}.".replace(" .", ".")


def _synth_paraphrase(rng: random.Random) -> dict:
    name, role = _pick(rng, _NAMES), _pick(rng, _ROLES)
    agent, patient = (name, role) if rng.random() < 0.5 else (role, name)
    group = _pick(rng, _ACTION_GROUPS)
    when = _pick(rng, _WHEN)
    first_passive = rng.random() < 0.5
    first = _event(agent, _pick(rng, group), patient, when, first_passive)
    label = rng.randrange(2)  # 1 equivalent
    draw = rng.random()
    if label == 1:  # same roles, same meaning: a synonym and/or the other voice (half)
        second = _event(agent, _pick(rng, group), patient, when, rng.random() < 0.5)
    elif draw < 0.15:  # agent and patient swapped: the same words, another meaning
        passive = first_passive if rng.random() < 0.75 else not first_passive
        second = _event(patient, _pick(rng, group), agent, when, passive)
    elif draw < 0.6:  # one participant replaced by another of the same kind
        if rng.random() < 0.5:
            agent = _pick(rng, [p for p in (_NAMES if agent == name else _ROLES) if p != agent])
        else:
            pool = _NAMES if patient == name else _ROLES
            patient = _pick(rng, [p for p in pool if p != patient])
        second = _event(agent, _pick(rng, group), patient, when, rng.random() < 0.5)
    else:  # another action
        action = _pick(rng, [g for g in _ACTION_GROUPS if g is not group])
        second = _event(agent, _pick(rng, action), patient, when, rng.random() < 0.5)
    return {"sentence1": first, "sentence2": second, "label": label}


_GENERATORS: dict[str, Callable[[random.Random], dict]] = {
    "synth_sentiment": _synth_sentiment,
    "synth_agreement": _synth_agreement,
    "synth_entailment": _synth_entailment,
    "synth_paraphrase": _synth_paraphrase,
}


@functools.lru_cache(maxsize=32)
def _build_splits(name: str, seed: int) -> dict[str, tuple[dict, ...]]:
    task = _registry_entry(name)
    generate = _GENERATORS[name]
    rng = random.Random(f"{name}:{seed}")
    seen_examples: set[tuple] = set()
    earlier_texts: set[str] = set()
    splits: dict[str, tuple[dict, ...]] = {}
    for split, size in SYNTHETIC_SIZES.items():
        quota = [size // task.num_labels] * task.num_labels
        rows: list[dict] = []
        texts: set[str] = set()
        for _ in range(200 * size):
            if len(rows) == size:
                break
            row = generate(rng)
            key = tuple(row[field] for field in task.text_fields)
            if quota[row["label"]] == 0 or key in seen_examples:
                continue
            if any(text in earlier_texts for text in key):
                continue  # no sentence of an earlier split appears in a later one
            if task.text_fields[0] != task.text_fields[-1] and key[0] == key[-1]:
                continue  # a pair of identical sentences says nothing
            quota[row["label"]] -= 1
            seen_examples.add(key)
            texts.update(key)
            rows.append(row)
        else:  # pragma: no cover - the vocabularies are far larger than the splits
            raise RuntimeError(f"could not draw {size} distinct {name} examples for {split}")
        splits[split] = tuple(rows)
        earlier_texts |= texts
    return splits


def generate_synthetic(name: str, seed: int = 0) -> datasets.DatasetDict:
    """All splits of a synthetic task, generated deterministically from a seed.

    Each split has exactly balanced labels (sizes in :data:`SYNTHETIC_SIZES`: 4,000 train, 1,000
    validation, 1,000 test), no duplicated example, and no sentence that also occurs in another
    split. The same seed gives identical data on every machine (Python's ``random.Random``
    seeded with a string); :func:`layersim.tasks.load` uses seed 0, the canonical data.

    The four tasks below. How hard each is for MiniLM (a linear probe on frozen features against
    fine-tuning with the ``demo`` settings) was measured with
    ``python benchmarks/finetune_bench.py difficulty``; the figures are in
    ``benchmarks/results/synthetic_difficulty_cpu.txt``.

    ``synth_sentiment`` (SST-2-like; labels negative / positive)
        One clause ("the plot was never truly gripping."), two agreeing clauses, or a contrast
        whose main clause decides ("although the cast was superb, the script is anything but
        clever."). 30 subjects, 30 positive and 30 negative adjectives, 16 intensifiers,
        28 frames of which 15 negate (not, never, hardly, far from, nobody found ..., anything
        but), 8 contrast templates. Every adjective occurs under both labels.
    ``synth_agreement`` (CoLA-like; unacceptable / acceptable)
        Subject–verb agreement across attractors: prepositional phrases ("the keys to the
        cabinets is ..."), object relatives ("the pilot that the guards admire are ...") and
        subject relatives; 50 nouns with regular and irregular plurals, 24 predicates. Attractors
        disagree with the head in number 75% of the time; a linear probe on the
        frozen features stays at chance, and fine-tuning fails on some seeds.
    ``synth_entailment`` (RTE/MNLI-like; entailment / not_entailment)
        Quantifiers (every/each, some/a/at least one, no) with hypernym trees of 48 nouns and
        37 verb phrases ("every poodle sprinted in the park." ⇒ "some dog ran in the park.");
        the label follows monotonicity (every: ↓ restrictor ↑ scope, some: ↑↑, no: ↓↓, every ⇒
        some with existential import).
    ``synth_paraphrase`` (MRPC/QQP-like; not_equivalent / equivalent)
        Event pairs with one named person (55 names) and one role ("the chef", 25 roles), 31
        actions in synonym groups and 15 time phrases. Equivalent: a synonym and/or the other
        voice ("anna praised the chef." / "the chef was commended by anna."). Not equivalent:
        agent and patient swapped (same words; 15% of negatives), one participant replaced by
        another of the same kind (45%), or another action (40%). Who acted is visible in each
        sentence from local cues, but only their combination across the pair decides.

    Parameters
    ----------
    name : str
        One of ``layersim.tasks.SYNTHETIC_TASKS``.
    seed : int
        Generator seed.

    Returns
    -------
    datasets.DatasetDict
        ``train``, ``validation``, ``test``.
    """
    if name not in _GENERATORS:
        raise ValueError(
            f"unknown synthetic task {name!r}; synthetic tasks: {', '.join(_GENERATORS)}"
        )
    splits = _build_splits(name, int(seed))
    task = _registry_entry(name)
    features = datasets.Features(
        {field: datasets.Value("string") for field in task.text_fields}
        | {"label": datasets.ClassLabel(names=list(task.label_names))}
    )
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_list([dict(row) for row in rows], features=features)
            for split, rows in splits.items()
        }
    )
