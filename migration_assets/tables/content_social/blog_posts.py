"""blog posts (Mongo ``blogposts``) -> ``blog_posts``.

Document shape::

    {_id, author: ObjectId(users), title, slug, excerpt?, body, tags?: [str], status?,
     publishedAt?, createdAt, updatedAt?}

``slug`` is unique. Posts from the first CMS have no ``tags`` (-> empty array) and no
``status`` (-> draft); ``publishedAt`` only on published posts. Titles and bodies are
Unicode (Turkish, emoji, CJK) and load byte for byte; a NUL character, which PostgreSQL
text cannot hold, quarantines the post. Moves with ``REPO_BLOG`` / ``BLOG_STORE``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.enums import BLOG_POST_STATUS
from migration_assets.specs.kinds import TEXT, TEXT_ARRAY, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

BLOG_POSTS = TableSpec(
    table="blog_posts",
    description="Blog posts of the marketplace.",
    columns=(
        id_column("blog_posts"),
        legacy_column(),
        Column("author_id", Ref("users"), "author", required=True),
        Column("title", TEXT, "title", required=True),
        Column("slug", TEXT, "slug", required=True),
        Column("excerpt", TEXT, "excerpt"),
        Column("body", TEXT, "body", required=True),
        Column("tags", TEXT_ARRAY, "tags", required=True, default=[]),
        Column("status", BLOG_POST_STATUS, "status", required=True, default="draft"),
        Column("published_at", TIMESTAMP, "publishedAt"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

LOADER = LoaderSpec(
    name="blog_posts",
    collection="blogposts",
    domain="content_social",
    tables=(BLOG_POSTS,),
    flags=("REPO_BLOG", "BLOG_STORE"),
)
