import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketplace.corpus.generator import CorpusSpec
from marketplace.services.synthetic_corpus import load_into_database, write_twitter_v2


class Command(BaseCommand):
    help = (
        "Generate a seeded synthetic corpus. --format db (default) loads it straight into the "
        "database; --format twitter-v2 --out PATH writes X API v2 pages to PATH (gzip if it ends "
        "in .gz) and the compliance events to PATH's sibling NAME.compliance.jsonl[.gz]."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--posts", type=int, required=True)
        parser.add_argument("--creators", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--format", choices=["db", "twitter-v2"], default="db")
        parser.add_argument("--out", type=Path)

    def handle(self, *args: object, **options: object) -> None:
        posts, creators = options["posts"], options["creators"]
        assert isinstance(posts, int) and isinstance(creators, int)
        if posts < 0 or creators < 1:
            raise CommandError("--posts must be >= 0 and --creators >= 1")
        seed = options["seed"]
        assert isinstance(seed, int)
        spec = CorpusSpec(posts=posts, creators=creators, seed=seed)
        started = time.perf_counter()
        if options["format"] == "twitter-v2":
            out = options["out"]
            if not isinstance(out, Path):
                raise CommandError("--format twitter-v2 needs --out PATH")
            out.parent.mkdir(parents=True, exist_ok=True)
            report, events_path = write_twitter_v2(spec=spec, out=out)
            self.stdout.write(
                f"pages: {out} ({report.pages} pages, {report.posts} tweets)\n"
                f"compliance events: {events_path} ({report.events} events)"
            )
        else:
            if options["out"] is not None:
                raise CommandError("--out is only for --format twitter-v2")
            load = load_into_database(spec=spec)
            posts_counts = {k: v for k, v in load.posts.to_dict().items() if k != "errors"}
            events_counts = {k: v for k, v in load.compliance.to_dict().items() if k != "errors"}
            self.stdout.write(f"posts: {json.dumps(posts_counts)}")
            self.stdout.write(f"compliance: {json.dumps(events_counts)}")
        self.stdout.write(f"done in {time.perf_counter() - started:.1f}s")
