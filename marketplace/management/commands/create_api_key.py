from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketplace.errors import DomainError
from marketplace.models import Organization
from marketplace.services.actor import Actor
from marketplace.services.api_keys import create_api_key


class Command(BaseCommand):
    help = "Create an API key for an organization and print it once (it is stored only as a hash)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--scopes", required=True, help="Comma-separated, e.g. read,extract.")
        parser.add_argument("--name", default="cli", help="A name to recognise the key by.")

    def handle(self, *args: object, **options: str) -> None:
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No organization with slug '{options['org']}'.")
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        try:
            api_key, raw_key = create_api_key(
                actor=Actor.system(), organization=organization, name=options["name"], scopes=scopes
            )
        except DomainError as error:
            raise CommandError(error.detail) from error
        self.stderr.write(
            f"Created key {api_key.prefix} for {organization.slug} ({', '.join(api_key.scopes)})."
        )
        self.stdout.write(raw_key)
