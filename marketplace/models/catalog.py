from django.db import models


class ConsentBasis(models.TextChoices):
    # Unset consent counts as allowed (the creator may opt out) ...
    OPT_OUT = "opt_out", "Opt-out (unset counts as allowed)"
    # ... or as denied (only creators who opted in).
    OPT_IN = "opt_in", "Opt-in (only explicit consent)"


class Dataset(models.Model):
    """A licensable slice of the corpus: every post inside its base scope, filtered by consent
    under its consent basis. (The catalog issue adds the datasheet, offers and visibility.)"""

    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    consent_basis = models.CharField(
        max_length=8, choices=ConsentBasis.choices, default=ConsentBasis.OPT_IN
    )
    base_scope = models.JSONField(default=dict, blank=True)
    is_published = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug
