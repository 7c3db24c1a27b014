"""One document -> rows: the reference transform (the specification), the compiled one (the
same rules as straight-line Python, bailing back to the reference on anything unusual),
behind one interface (``document.DocumentTransform``), and the collection-level context
both read. Imports specs and source; no dagster."""
