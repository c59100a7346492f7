"""The project's exception tree. The service translates it to HTTP in one place.

RelatedArticlesError
 ├── InputError               bad input to a build or a request          (422)
 │    ├── InvalidArticlesError    rows of an input file failed validation
 │    ├── InvalidQueryError       a request's options contradict each other or pass their caps
 │    └── UnsupportedMediaTypeError  a body that is not sent as JSON        (415)
 ├── ArticleNotFoundError     no article with that id                    (404)
 │    └── UrlNotFoundError        no article at that URL
 ├── UnauthorizedError        a write without a valid API key            (401)
 ├── NotReadyError            no bundle loaded yet                       (503)
 ├── BundleError              a bundle is missing, damaged or mismatched (503)
 │    ├── BundleNotFoundError
 │    ├── BundleCorruptError
 │    └── BundleMismatchError     built with another model or dimension
 ├── BuildError               a build could not run or finish
 │    └── BuildLockedError        another build holds the lock
 ├── WriteLogError            the write log cannot be opened or written  (503)
 │    ├── WriteLogLostError       the log is missing, emptied, replaced or older than acknowledged
 │    └── WriteLogUnavailableError  its database cannot be reached (for now)
 │         └── WriteLogAccessError    no permission to write it, or a read-only file system
 ├── CacheError               the embedding cache cannot be read or written
 └── ModelError               the embedding model could not be loaded
"""

from __future__ import annotations

from dataclasses import dataclass


class RelatedArticlesError(Exception):
    """Base of every error this project raises on purpose."""

    code = "error"


class InputError(RelatedArticlesError):
    """Input that cannot be used as given."""

    code = "invalid_input"


@dataclass(frozen=True)
class RowError:
    """One bad row of an input file."""

    line: int
    message: str
    file: str = ""

    def __str__(self) -> str:
        return f"{self.file}:line {self.line}: {self.message}"


class InvalidArticlesError(InputError):
    """Rows of an input file failed validation; `errors` lists each with its line."""

    code = "invalid_articles"

    def __init__(self, source: str, errors: list[RowError]) -> None:
        self.source = source
        self.errors = errors
        shown = "\n".join(f"  {e}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(
            f"{len(errors)} invalid row(s) in {source} (use --skip-invalid to index the rest):\n{shown}{more}"
        )


class InvalidQueryError(InputError):
    """A request whose options cannot be satisfied together."""

    code = "invalid_query"


class UnsupportedMediaTypeError(InputError):
    """A request body sent without Content-Type: application/json."""

    code = "unsupported_media_type"


class ArticleNotFoundError(RelatedArticlesError):
    """No article with the given id in the loaded bundle."""

    code = "article_not_found"

    def __init__(self, article_id: str) -> None:
        self.article_id = article_id
        super().__init__(f"no article with id {article_id!r}")


class UrlNotFoundError(ArticleNotFoundError):
    """No article at the given URL (compared canonically)."""

    code = "url_not_found"

    def __init__(self, url: str) -> None:
        self.url = url
        RelatedArticlesError.__init__(self, f"no article with the URL {url!r}")


class UnauthorizedError(RelatedArticlesError):
    """A write without a valid API key."""

    code = "unauthorized"


class NotReadyError(RelatedArticlesError):
    """The service has no bundle loaded yet."""

    code = "not_ready"


class BundleError(RelatedArticlesError):
    """A bundle cannot be used."""

    code = "bundle_error"


class BundleNotFoundError(BundleError):
    """No published bundle where one was expected."""

    code = "bundle_not_found"


class BundleCorruptError(BundleError):
    """A bundle whose files are missing, truncated or inconsistent."""

    code = "bundle_corrupt"


class BundleMismatchError(BundleError):
    """A bundle built with another model, dimension or text setup."""

    code = "bundle_mismatch"


class BuildError(RelatedArticlesError):
    """A build that could not run or finish."""

    code = "build_failed"


class BuildLockedError(BuildError):
    """Another build of the same bundles directory is running."""

    code = "build_locked"


class WriteLogError(RelatedArticlesError):
    """The write log cannot be opened or written: nothing was acknowledged."""

    code = "write_log_error"


class WriteLogLostError(WriteLogError):
    """The write log is not the one the bundles directory is bound to: acknowledged writes would be lost."""

    code = "write_log_lost"


class WriteLogUnavailableError(WriteLogError):
    """The write log's database cannot be reached: nothing is lost, and it is tried again."""

    code = "write_log_unavailable"


class WriteLogAccessError(WriteLogUnavailableError):
    """The log or its directory cannot be written (permission, read-only file system): nothing is lost."""

    code = "write_log_not_writable"


class CacheError(RelatedArticlesError):
    """The embedding cache cannot be read or written (it is only a cache: it can be deleted)."""

    code = "cache_error"


class ModelError(RelatedArticlesError):
    """The embedding model could not be loaded."""

    code = "model_error"
