"""A seeded synthetic corpus: X API v2 pages plus the compliance events that go with them.

Every creator and post is a pure function of (seed, index), so the corpus is identical for a
seed, any post can be recomputed when a later post references it, and nothing is kept in memory
but a few caches: millions of posts stream in constant memory.

Proportions (of posts unless said otherwise), chosen to resemble a public sample:
- languages: en 55%, es 12%, ja 8%, pt 7%, fr 6%, de 5%, ar 3%, hi 2%, und 2%;
- kinds: replies ~15%, quotes ~8%, retweets ~12%, the rest original;
- hashtags on ~35%, a mention on ~20%, sensitive ~4%, geo ~3% (40% of it later scrubbed),
  an e-mail address or phone number in ~1.5% (for redaction), edits on ~4% (2 or 3 versions;
  half of them deliver the older version later, out of order);
- creators: ~10% protected, ~2% withheld somewhere, ~1.5% suspended (plus ~1% suspended then
  reinstated), ~1% deleted (plus ~0.5% deleted then restored), ~15% deny at least one purpose
  (`ai_opt_out`, a third of them after opting in), ~40% opt in to training and evaluation (a
  quarter of those to every purpose), ~10% opt in to compensation;
- posts: ~2% deleted, ~0.5% dropped (a third undropped later), ~1% withheld.
Compliance events are emitted in locally shuffled order, and ~2% of them twice.
"""

import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from marketplace.models.corpus import ConsentPurpose

POST_ID_BASE = 1_700_000_000_000_000_000
EDIT_ID_BASE = 2_700_000_000_000_000_000  # edits get larger ids than any initial post
CREATOR_ID_BASE = 50_000_000_000
PAGE_SIZE = 100
_SALT_CREATOR, _SALT_POST, _SALT_STREAM = 1, 2, 3

LANGUAGES = (
    ("en", 55),
    ("es", 12),
    ("ja", 8),
    ("pt", 7),
    ("fr", 6),
    ("de", 5),
    ("ar", 3),
    ("hi", 2),
    ("und", 2),
)


def _words(text: str) -> list[str]:
    return text.split()


WORDS = {
    "en": _words(
        "the data open model people city music coffee morning weekend game team news rain "
        "learning code garden book film great really today new love think"
    ),
    "es": _words(
        "el la datos ciudad música café mañana fin semana equipo noticias lluvia libro "
        "película gran hoy nuevo amor pienso código"
    ),
    "ja": _words("今日 天気 音楽 コーヒー 朝 週末 試合 ニュース 雨 本 映画 新しい 好き 東京 仕事"),
    "pt": _words(
        "o a dados cidade música café manhã fim semana time notícias chuva livro filme "
        "ótimo hoje novo amor acho"
    ),
    "fr": _words(
        "le la données ville musique café matin weekend équipe nouvelles pluie livre film "
        "super aujourd'hui nouveau amour pense"
    ),
    "de": _words(
        "der die Daten Stadt Musik Kaffee Morgen Wochenende Spiel Team Nachrichten Regen "
        "Buch Film toll heute neu Liebe denke"
    ),
    "ar": _words("اليوم الطقس موسيقى قهوة صباح نهاية الأسبوع مباراة أخبار مطر كتاب فيلم جديد"),
    "hi": _words("आज मौसम संगीत कॉफी सुबह सप्ताहांत खेल खबर बारिश किताब फिल्म नया"),
    "und": _words("lol ok 😂 🔥 👍 ... !!! ?? 🎉 💯"),
}
HASHTAGS = _words(
    "python django opendata ai machinelearning climate football music travel food "
    "photography news science art books movies coffee running elections health tech "
    "startups gaming fashion nature"
)
CITIES = (
    ("London", "GB", -0.12, 51.5),
    ("Madrid", "ES", -3.7, 40.4),
    ("Tokyo", "JP", 139.7, 35.7),
    ("São Paulo", "BR", -46.6, -23.5),
    ("Paris", "FR", 2.35, 48.85),
    ("Berlin", "DE", 13.4, 52.5),
    ("New York", "US", -74.0, 40.7),
    ("Mumbai", "IN", 72.9, 19.1),
    ("Cairo", "EG", 31.2, 30.0),
)
WITHHELD_CHOICES = (["DE"], ["FR", "DE"], ["IN"], ["TR"], ["RU", "BY"])
ADJECTIVES = _words("quiet bright lucky swift brave calm eager gentle jolly kind noble proud")
NOUNS = _words("otter falcon maple river comet harbor meadow pixel lantern summit willow ember")
PURPOSES = tuple(ConsentPurpose.values)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class CorpusSpec:
    """What to generate. The same spec always gives the same corpus."""

    posts: int
    creators: int
    seed: int
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    end: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    page_size: int = PAGE_SIZE


@dataclass(frozen=True)
class SyntheticCreator:
    index: int
    platform_id: int
    user: dict[str, Any]  # the X API v2 user object


@dataclass(frozen=True)
class SyntheticPost:
    index: int
    platform_id: int
    author_index: int
    kind: str
    referenced_index: int | None
    versions: tuple[dict[str, Any], ...]  # tweet objects, oldest first; the last is current
    created_at: datetime

    @property
    def latest(self) -> dict[str, Any]:
        return self.versions[-1]


@dataclass
class GenerationReport:
    """What was written: pages, tweets in `data` (late older versions included), events."""

    posts: int = 0
    pages: int = 0
    events: int = 0


class SyntheticCorpus:
    """Creators, posts, pages and compliance events for one spec."""

    def __init__(self, spec: CorpusSpec) -> None:
        if spec.posts < 0 or spec.creators < 1:
            raise ValueError("need posts >= 0 and creators >= 1")
        self.spec = spec
        self.creator = lru_cache(maxsize=65536)(self._creator)
        self.post = lru_cache(maxsize=8192)(self._post)
        self._span_seconds = int((spec.end - spec.start).total_seconds())

    def _rng(self, salt: int, index: int) -> random.Random:
        return random.Random((self.spec.seed * 4 + salt) * 2**40 + index)

    # -- creators

    def _creator(self, index: int) -> SyntheticCreator:
        rng = self._rng(_SALT_CREATOR, index)
        platform_id = CREATOR_ID_BASE + index
        adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        city = rng.choice(CITIES)
        user: dict[str, Any] = {
            "id": str(platform_id),
            "username": f"{adjective}_{noun}{index}",
            "name": f"{adjective.title()} {noun.title()}",
            "created_at": _iso(
                datetime(2008, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(5800))
            ),
            "protected": rng.random() < 0.10,
            "description": "synthetic account",
            "verified": False,
        }
        if rng.random() < 0.7:
            user["location"] = f"{city[0]}, {city[1]}"
        if rng.random() < 0.02:
            user["withheld"] = {"country_codes": rng.choice(WITHHELD_CHOICES), "scope": "user"}
        return SyntheticCreator(index=index, platform_id=platform_id, user=user)

    def creator_events(self, index: int) -> list[dict[str, Any]]:
        """The compliance and consent events of one creator, consistent with its user object
        (whose `protected` and `withheld` describe the state at the end)."""
        creator = self.creator(index)
        rng = self._rng(_SALT_CREATOR, index + 2**39)
        user = {"id": creator.user["id"]}
        start, span = self.spec.start, self._span_seconds

        def at(fraction_from: float = 0.0, fraction_to: float = 1.0) -> datetime:
            low, high = int(span * fraction_from), int(span * fraction_to)
            return start + timedelta(seconds=rng.randrange(low, max(low + 1, high)))

        events: list[dict[str, Any]] = []

        def event(kind: str, moment: datetime, **extra: Any) -> None:
            events.append({"data": {kind: {"user": user, **extra, "event_at": _iso(moment)}}})

        if creator.user["protected"] and rng.random() < 0.33:
            event("user_protect", at())
        elif not creator.user["protected"] and rng.random() < 0.03:
            event("user_protect", at(0, 0.5))
            event("user_unprotect", at(0.5, 1))
        if "withheld" in creator.user:
            event(
                "user_withheld",
                at(),
                withheld_in_countries=creator.user["withheld"]["country_codes"],
            )
        roll = rng.random()
        if roll < 0.015:
            event("user_suspend", at(0.3, 1))
        elif roll < 0.025:
            event("user_suspend", at(0, 0.5))
            event("user_unsuspend", at(0.5, 1))
        roll = rng.random()
        if roll < 0.01:
            event("user_delete", at(0.5, 1))
        elif roll < 0.015:
            event("user_delete", at(0, 0.5))
            event("user_undelete", at(0.5, 1))
        roll = rng.random()
        if roll < 0.15:
            denied = rng.sample(PURPOSES, rng.randint(1, len(PURPOSES)))
            if rng.random() < 0.33:
                event("ai_opt_in", at(0, 0.5), purposes=list(PURPOSES))
                event("ai_opt_out", at(0.5, 1), purposes=sorted(denied))
            else:
                event("ai_opt_out", at(), purposes=sorted(denied))
        elif roll < 0.55:
            chosen = list(PURPOSES) if rng.random() < 0.25 else ["training", "evaluation"]
            event("ai_opt_in", at(), purposes=chosen)
        roll = rng.random()
        if roll < 0.10:
            event("compensation_opt_in", at())
        elif roll < 0.12:
            event("compensation_opt_in", at(0, 0.5))
            event("compensation_opt_out", at(0.5, 1))
        return events

    # -- posts

    def _author_index(self, index: int, rng: random.Random) -> int:
        creators = self.spec.creators
        if index < creators:
            return index  # every creator posts at least once when there are enough posts
        return min(creators - 1, int(creators * rng.random() ** 2))  # a few post a lot

    def _post(self, index: int) -> SyntheticPost:
        rng = self._rng(_SALT_POST, index)
        spec = self.spec
        platform_id = POST_ID_BASE + index
        author = self.creator(self._author_index(index, rng))
        step = max(1, self._span_seconds // max(spec.posts, 1))
        created_at = spec.start + timedelta(
            seconds=min(self._span_seconds - 1, index * self._span_seconds // max(spec.posts, 1))
            + rng.randrange(step)
        )
        lang = rng.choices([code for code, _ in LANGUAGES], [w for _, w in LANGUAGES])[0]
        roll = rng.random() if index > 0 else 1.0
        kind = (
            "retweet"
            if roll < 0.12
            else "quote"
            if roll < 0.20
            else "reply"
            if roll < 0.35
            else "original"
        )
        referenced_index = None
        if kind != "original":
            referenced_index = index - 1 - min(index - 1, int(rng.expovariate(1 / 40)))
            referenced = self.post(referenced_index)
            if referenced.kind == "retweet":  # people retweet and answer the original
                referenced_index = referenced.referenced_index
        tweet: dict[str, Any] = {
            "id": str(platform_id),
            "author_id": author.user["id"],
            "created_at": _iso(created_at),
            "lang": lang,
            "possibly_sensitive": rng.random() < 0.04,
            "public_metrics": {
                "retweet_count": int(rng.expovariate(0.5)),
                "reply_count": int(rng.expovariate(1)),
                "like_count": int(rng.expovariate(0.1)),
                "quote_count": int(rng.expovariate(2)),
            },
            "conversation_id": str(platform_id),
            "edit_history_tweet_ids": [str(platform_id)],
        }
        if kind == "retweet":
            assert referenced_index is not None
            original = self.post(referenced_index)
            original_author = self.creator(original.author_index)
            tweet["text"] = f"RT @{original_author.user['username']}: {original.latest['text']}"[
                :280
            ]
            tweet["referenced_tweets"] = [
                {"type": "retweeted", "id": str(POST_ID_BASE + referenced_index)}
            ]
            tweet["entities"] = {
                "mentions": [
                    {
                        "start": 3,
                        "end": 4 + len(original_author.user["username"]),
                        "username": original_author.user["username"],
                        "id": original_author.user["id"],
                    }
                ]
            }
            return SyntheticPost(
                index, platform_id, author.index, kind, referenced_index, (tweet,), created_at
            )
        words = WORDS[lang]
        text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 16)))
        entities: dict[str, Any] = {}
        if rng.random() < 0.20:
            mentioned = self.creator(rng.randrange(self.spec.creators))
            handle = mentioned.user["username"]
            entities["mentions"] = [
                {"start": 0, "end": len(handle) + 1, "username": handle, "id": mentioned.user["id"]}
            ]
            text = f"@{handle} {text}"
        if rng.random() < 0.35:
            tags = rng.sample(HASHTAGS, rng.randint(1, 3))
            entities["hashtags"] = []
            for tag in tags:
                entities["hashtags"].append(
                    {"start": len(text) + 1, "end": len(text) + 2 + len(tag), "tag": tag.title()}
                )
                text += f" #{tag.title()}"
        contact = rng.random()
        if contact < 0.01:
            text += f" write to {author.user['username']}@example.com"
        elif contact < 0.015:
            text += " call +44 20 7946 0958"
        tweet["text"] = text
        if entities:
            tweet["entities"] = entities
        if kind != "original":
            reference_type = "quoted" if kind == "quote" else "replied_to"
            tweet["referenced_tweets"] = [
                {"type": reference_type, "id": str(POST_ID_BASE + referenced_index)}  # type: ignore[operator]
            ]
        if rng.random() < 0.03:
            city = rng.choice(CITIES)
            tweet["geo"] = {
                "place_id": f"{rng.getrandbits(64):016x}",
                "coordinates": {
                    "type": "Point",
                    "coordinates": [
                        round(city[2] + rng.uniform(-0.1, 0.1), 5),
                        round(city[3] + rng.uniform(-0.1, 0.1), 5),
                    ],
                },
            }
        versions = [tweet]
        if rng.random() < 0.04:
            count = 2 if rng.random() < 0.8 else 3
            ids = [str(platform_id)] + [
                str(EDIT_ID_BASE + index * 4 + number) for number in range(1, count)
            ]
            versions = []
            for number, version_id in enumerate(ids):
                version = dict(tweet)
                version["id"] = version_id
                version["edit_history_tweet_ids"] = ids
                version["created_at"] = _iso(created_at + timedelta(minutes=7 * number))
                if number:
                    version["text"] = f"{tweet['text']} (edit {number}: fixed a typo)"
                versions.append(version)
        return SyntheticPost(
            index, platform_id, author.index, kind, referenced_index, tuple(versions), created_at
        )

    def post_events(self, post: SyntheticPost) -> list[dict[str, Any]]:
        rng = self._rng(_SALT_POST, post.index + 2**39)
        author_id = self.creator(post.author_index).user["id"]
        tweet = {"id": str(post.platform_id), "author_id": author_id}
        events: list[dict[str, Any]] = []

        def event(kind: str, delay_days: float, **extra: Any) -> None:
            moment = post.created_at + timedelta(seconds=int(delay_days * 86400))
            events.append({"data": {kind: {"tweet": tweet, **extra, "event_at": _iso(moment)}}})

        if len(post.versions) > 1:
            ids = [version["id"] for version in post.versions]
            for number, version in enumerate(post.versions[1:], start=1):
                events.append(
                    {
                        "data": {
                            "tweet_edit": {
                                "tweet": {"id": version["id"], "author_id": author_id},
                                "initial_tweet_id": ids[0],
                                "edit_tweet_ids": ids[: number + 1],
                                "event_at": version["created_at"],
                            }
                        }
                    }
                )
        roll = rng.random()
        if roll < 0.02:
            event("delete", rng.uniform(0.1, 60))
        elif roll < 0.025:
            event("drop", rng.uniform(0.1, 30))
            if rng.random() < 0.33:
                event("undrop", rng.uniform(30, 60))
        elif roll < 0.035:
            event(
                "withheld", rng.uniform(0.1, 60), withheld_in_countries=rng.choice(WITHHELD_CHOICES)
            )
        if "geo" in post.latest and rng.random() < 0.4:
            event("scrub_geo", rng.uniform(1, 90), up_to_tweet_id=str(post.platform_id))
        return events

    # -- streams

    def pages(self, on_event: Callable[[dict[str, Any]], None] | None = None) -> Iterator[dict]:
        """X API v2 pages of `page_size` posts each, oldest first. Referenced posts and their
        authors are in `includes`; half of the edited posts deliver their older version a few
        pages later. Compliance events are handed to `on_event` (creators' first)."""
        emit = on_event or (lambda message: None)
        spec = self.spec
        shuffler = _Shuffler(self._rng(_SALT_STREAM, 0), emit)
        for index in range(min(spec.creators, max(spec.posts, 1))):
            for message in self.creator_events(index):
                shuffler.add(message)
        late_versions: deque[tuple[int, dict[str, Any]]] = deque()
        stream_rng = self._rng(_SALT_STREAM, 1)
        for page_number, page_start in enumerate(range(0, spec.posts, spec.page_size)):
            data: list[dict[str, Any]] = []
            included: dict[str, dict[str, Any]] = {}
            user_indexes: dict[int, None] = {}
            while late_versions and late_versions[0][0] <= page_number:
                data.append(late_versions.popleft()[1])
            for index in range(page_start, min(spec.posts, page_start + spec.page_size)):
                post = self.post(index)
                data.append(post.latest)
                user_indexes[post.author_index] = None
                if len(post.versions) > 1 and stream_rng.random() < 0.5:
                    late_versions.append((page_number + stream_rng.randint(1, 5), post.versions[0]))
                if post.referenced_index is not None:
                    referenced = self.post(post.referenced_index)
                    included[referenced.latest["id"]] = referenced.latest
                    user_indexes[referenced.author_index] = None
                for message in self.post_events(post):
                    shuffler.add(message)
            page: dict[str, Any] = {
                "data": data,
                "includes": {
                    "users": [self.creator(index).user for index in user_indexes],
                },
                "meta": {"result_count": len(data), "next_token": f"page{page_number + 1}"},
            }
            if included:
                page["includes"]["tweets"] = list(included.values())
            yield page
        while late_versions:
            yield {"data": [late_versions.popleft()[1]], "includes": {}}
        shuffler.close()


class _Shuffler:
    """Emits events in locally shuffled order, some twice: real compliance streams repeat and
    reorder. Bounded memory: at most `window` events are held."""

    def __init__(
        self, rng: random.Random, emit: Callable[[dict[str, Any]], None], window: int = 256
    ) -> None:
        self.rng, self.emit, self.window = rng, emit, window
        self.buffer: list[dict[str, Any]] = []

    def add(self, message: dict[str, Any]) -> None:
        self.buffer.append(message)
        if len(self.buffer) >= self.window:
            self._drain(keep_duplicates=True)

    def _drain(self, *, keep_duplicates: bool) -> None:
        self.rng.shuffle(self.buffer)
        duplicates = [message for message in self.buffer if self.rng.random() < 0.02]
        for message in self.buffer:
            self.emit(message)
        self.buffer = duplicates if keep_duplicates else []
        if not keep_duplicates:
            for message in duplicates:
                self.emit(message)

    def close(self) -> None:
        self._drain(keep_duplicates=False)
